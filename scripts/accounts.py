"""The accounts process (`python -m bot accounts`, started by `make run`): every started
Telegram account's session, in one process, on one asyncio loop — never in a web request.

* **Desired state** is what the management endpoint wrote in `tg_accounts` (running /
  stopped, and a generation bumped by every start or update); this process looks at it
  every half second (and at once when a door calls /wake) and starts, restarts or stops
  sessions to match. It reports what is true: online / offline per number, the last
  error. A session Telegram no longer accepts goes offline with `#ERROR` once, and is
  not retried until the account is updated (PUT) — retrying a revoked session achieves
  nothing. Any other failure (network, Telegram away) is retried with a capped backoff;
  a FLOOD_WAIT is waited out.
* **Events** — every message of a private chat, incoming or outgoing, and "read" — are
  stored as durable jobs (`tga_message`, `tga_read`: key = account + message id) before
  they are confirmed to the source; a file is downloaded (bounded) and kept first. An
  outgoing message is looked up among our own sends (`tg_sent`) only after the sends in
  flight to that chat have recorded their ids, so what we sent for Planfix is never
  taken for the owner's own typing.
* **Logins** started in the panel (`tg_logins`, `services/tglogins.py`): this process
  claims each new one, holds its client for the whole conversation with Telegram (a QR
  code shown and rotated, a code, a cloud password) and, once logged in, keeps the
  session sealed in `tg_accounts` — the panel's requests only write and read the row.
  A login past its time is expired and its client closed; one whose process died is
  taken over by the next.
* **Control** (loopback JSON, `channels/tgaccount/control.py` is its client): send,
  resolve a recipient, mark read, wake. A send is recorded with its reference in the
  same moment Telegram gives its id, so a repeated call never sends twice.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import asdict
from typing import Callable

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from channels.tgaccount.account import (AccountClient, AccountError, FloodWait, MessageEvent, NotFound,
                                        OutFile, ReadEvent, Refused, SessionRevoked)
from channels.tgaccount.control import HEADER, HEARTBEAT, STALE_AFTER, control_token
from channels.tgaccount.sessions import SessionRefused, check_owner, secure_folder, session_file
from config import Settings
from bot.outbox import TelegramOut
from models.bells import BellRegistry
from models.db import Database
from models.jobs import SYNC, JobQueue
from models.leases import LeaseRepository
from models.tgaccounts import (OFFLINE, ONLINE, RUNNING, AccountHostRepository, AccountRepository,
                               AccountRow, Contact, ContactRepository, MediaRepository, SentRepository,
                               SentRow)
from models.tglogins import LoginRepository
from services.errors import ErrorReporter
from services.tglogins import LoginDriver
from utils.bell import BellRinger
from utils.http import same_secret
from utils.redact import redact
from utils.secretbox import SecretBox

log = logging.getLogger(__name__)

LOOK_EVERY = 0.5
# The accounts' lease: one holder at a time, renewed every HEARTBEAT; a holder that died
# is replaced this many seconds after its last renewal.
LEADER = "tg-accounts"
LEAD_SECONDS = 15.0
MAX_BACKOFF = 30.0
CALL_TIMEOUT = 60.0


def message_lane(account: str, peer_id: int) -> str:
    return f"tga:{account}:{peer_id}"


def session_of(row: AccountRow, box: SecretBox, folder) -> tuple[str | None, str | None]:
    """(session string kept in MariaDB, session file path inside `folder`): the stored
    one wins. SessionRefused for a file outside the sessions folder."""
    if row.session_enc:
        return box.open(row.session_enc), None
    if row.path_session:
        return None, session_file(folder, row.path_session, row.name_session)
    return None, None


def build_client(settings: Settings, row: AccountRow, box: SecretBox) -> AccountClient:
    """The account's client for the configured backend."""
    session, path = session_of(row, box, settings.tg_sessions_dir)
    if settings.tg_accounts_backend == "sandbox":
        from channels.tgaccount.emulated import EmulatedAccount
        if session is None and path is not None:
            try:
                with open(path + ".session", encoding="utf-8") as handle:
                    session = handle.read().strip()
            except OSError as exc:
                raise SessionRevoked(f"no session file: {exc.strerror}") from exc
        if not session:
            raise SessionRevoked("no session: log in with `python -m bot tg-login`")
        return EmulatedAccount(row.number, base_url=settings.tg_accounts_sandbox_url, session=session)
    from channels.tgaccount.telethon_client import TelethonAccount
    if not settings.telegram_api_id or not settings.telegram_api_hash:
        raise SessionRevoked("TELEGRAM_API_ID and TELEGRAM_API_HASH are not set")
    return TelethonAccount(row.number, api_id=settings.telegram_api_id,
                           api_hash=settings.telegram_api_hash, session=session, session_file=path)


def build_login_client(settings: Settings):
    """A fresh, not yet authorised client for a login (nothing on disk)."""
    if settings.tg_accounts_backend == "sandbox":
        from channels.tgaccount.login import EmulatedLogin
        return EmulatedLogin(settings.tg_accounts_sandbox_url)
    from channels.tgaccount.login import TelethonLogin
    if not settings.telegram_api_id or not settings.telegram_api_hash:
        raise SessionRevoked("TELEGRAM_API_ID and TELEGRAM_API_HASH are not set")
    return TelethonLogin(api_id=settings.telegram_api_id, api_hash=settings.telegram_api_hash)


class Runner:
    """One account's session: start, relay its events, report; until cancelled."""

    def __init__(self, host: "AccountsHost", row: AccountRow) -> None:
        self.host = host
        self.number = row.number
        self.generation = row.generation
        self.row = row
        self.client: AccountClient | None = None
        self.online = False
        self.inflight: collections.Counter = collections.Counter()
        self.settled = asyncio.Condition()
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"account-{row.number}")

    async def report(self, status: str, error: str | None) -> None:
        self.online = status == ONLINE
        await asyncio.to_thread(self.host.accounts.report, self.number, self.generation, status,
                                redact(error)[:1000] if error else None)

    async def run(self) -> None:
        delay = 1.0
        while True:
            try:
                self.client = build_client(self.host.settings, self.row, self.host.box)
                me = await self.client.start()
                check_owner(self.number, me.phone if me is not None else None)  # before any event
                await self.report(ONLINE, None)
                await asyncio.to_thread(self.host.accounts.clear_error_report, self.number)
                delay = 1.0
                log.info("account %s online", self.number)
                async for event in self.client.events():
                    await self.take(event)
                raise ConnectionError("disconnected")
            except asyncio.CancelledError:
                raise
            except SessionRefused as exc:
                await self.report(OFFLINE, f"session refused: {exc}")
                await asyncio.to_thread(self.host.report_once, self.number,
                                        f"Telegram account {self.number}: the session is refused ({exc});"
                                        " nothing of it is relayed — give this number its own session",
                                        "refused")
                await self.close()
                return  # until the account is updated
            except SessionRevoked as exc:
                await self.report(OFFLINE, f"session revoked: {exc}")
                await asyncio.to_thread(self.host.report_once, self.number,
                                        f"Telegram account {self.number}: the session is no longer "
                                        f"authorised ({exc}); log in again and update the account")
                await self.close()
                return  # until the account is updated: a new generation starts a new runner
            except FloodWait as exc:
                await self.report(OFFLINE, str(exc))
                await self.close()
                await asyncio.sleep(exc.retry_after)
            except Exception as exc:  # the network, Telegram away, the database away: again later
                log.warning("account %s: %s; retrying in %.0fs", self.number, redact(repr(exc)), delay)
                try:
                    await self.report(OFFLINE, f"{type(exc).__name__}: {exc}")
                except Exception:
                    pass
                await self.close()
                await asyncio.sleep(delay)
                delay = min(MAX_BACKOFF, delay * 2)

    async def close(self) -> None:
        client, self.client = self.client, None
        self.online = False
        if client is not None:
            try:
                await client.stop()
            except Exception:
                pass

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass
        await self.close()

    # -- events ------------------------------------------------------------------------

    async def take(self, event) -> None:
        """Store the event durably, then confirm it to its source."""
        if isinstance(event, MessageEvent) and event.relayable:
            if event.outgoing:
                await self.sends_settled(event.peer_id)
            media_id = None
            if event.media is not None:   # the owner's photo from the phone goes to Planfix too
                data = await self.client.download(event, self.host.settings.media_max_bytes)
                if data is not None:
                    media_id = await asyncio.to_thread(self.host.media.store, self.number, event.message_id,
                                                       event.media.name, event.media.mime, data)
            await asyncio.to_thread(self.host.store_message, event, media_id)
        elif isinstance(event, ReadEvent):
            await asyncio.to_thread(self.host.store_read, event)
        await self.client.confirm(event)

    async def sends_settled(self, peer_id: int) -> None:
        async with self.settled:
            await self.settled.wait_for(lambda: self.inflight[peer_id] == 0)

    async def send(self, peer_id: int, text: str, files: list[OutFile], sent: Callable[[int], None]) -> int:
        async with self.settled:
            self.inflight[peer_id] += 1
        try:
            message_id = await self.client.send_message(peer_id, text, files)
            await asyncio.to_thread(sent, message_id)
            return message_id
        finally:
            async with self.settled:
                self.inflight[peer_id] -= 1
                self.settled.notify_all()


class AccountsHost:
    def __init__(self, settings: Settings, db: Database, *, bell=None) -> None:
        self.settings = settings
        self.db = db
        self.box = SecretBox(settings.tg_accounts_key)
        self.accounts = AccountRepository(db)
        self.hosts = AccountHostRepository(db)
        self.contacts = ContactRepository(db)
        self.sent = SentRepository(db)
        self.media = MediaRepository(db)
        self.jobs = JobQueue(db, lease_seconds=settings.job_lease_seconds)
        self.reporter = ErrorReporter(db, TelegramOut(self.jobs), settings.channel_log)
        self.bell = bell or BellRinger(BellRegistry(db))
        self.runners: dict[str, Runner] = {}
        self.logins = LoginRepository(db)
        self.login_driver = LoginDriver(settings, db, self.box)
        self.login_tasks: dict[str, asyncio.Task] = {}
        self.logins_purged = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake = None  # asyncio.Event, made on the loop
        self.endpoint: str | None = None
        self.finished = threading.Event()
        self.leases = LeaseRepository(db)
        self.me = f"{settings.host_name}:{os.getpid()}:{secrets.token_hex(4)}"[:128]
        self.leading = False

    # -- storing what happened ----------------------------------------------------------

    def store_message(self, event: MessageEvent, media_id: int | None) -> None:
        origin = None
        if event.outgoing:
            mine = self.sent.by_message(event.account, event.message_id)
            origin = mine.origin if mine else None
        customer = asdict(event.customer) if event.customer else None
        if customer and not event.outgoing:
            self.contacts.save(Contact(event.account, event.peer_id, str(event.peer_id),
                                       customer["username"], customer["phone"],
                                       customer["first_name"], customer["last_name"]))
        payload = {"account": event.account, "message_id": event.message_id, "peer_id": event.peer_id,
                   "outgoing": event.outgoing, "origin": origin, "text": event.text[:20000],
                   "customer": customer, "date": event.date,
                   "media": dict(asdict(event.media), media_id=media_id) if event.media else None}
        job_id = self.jobs.enqueue_id(SYNC, "tga_message", payload,
                                      dedupe_key=f"tga:{event.account}:{event.message_id}",
                                      lane=message_lane(event.account, event.peer_id))
        if job_id is not None:
            self.bell.ring(job_id)

    def store_read(self, event: ReadEvent) -> None:
        job_id = self.jobs.enqueue_id(SYNC, "tga_read", {"account": event.account, "peer_id": event.peer_id,
                                                         "max_id": event.max_id},
                                      dedupe_key=f"tga:read:{event.account}:{event.peer_id}:{event.max_id}",
                                      lane=message_lane(event.account, event.peer_id))
        if job_id is not None:
            self.bell.ring(job_id)

    def report_once(self, number: str, cause: str, what: str = "revoked") -> None:
        if self.accounts.claim_error_report(number, cause[:200]):
            self.reporter.report(f"tgaccount: session of {number} {what}", cause)

    def reseal(self) -> int:
        """Secrets sealed with the former key derivation, sealed again with the current
        one (they still open either way); how many rows."""
        done = 0
        for row in self.accounts.all():
            if not (self.box.needs_reseal(row.token_planfix_enc) or self.box.needs_reseal(row.session_enc)):
                continue
            try:
                token = self.box.seal(self.box.open(row.token_planfix_enc))
                session = self.box.seal(self.box.open(row.session_enc)) if row.session_enc else None
            except ValueError:
                log.warning("account %s: its secrets do not open with TG_ACCOUNTS_KEY", row.number)
                continue
            done += self.accounts.reseal(row.number, token_planfix_enc=(row.token_planfix_enc, token),
                                         session_enc=(row.session_enc, session))
        return done

    # -- matching the desired state -------------------------------------------------------

    async def reconcile(self) -> None:
        rows = {row.number: row for row in await asyncio.to_thread(self.accounts.all)}
        for number, runner in list(self.runners.items()):
            row = rows.get(number)
            if row is None or row.desired != RUNNING or row.generation != runner.generation:
                del self.runners[number]
                await runner.stop()
                if row is not None:
                    await asyncio.to_thread(self.accounts.report, number, row.generation, OFFLINE, None)
                log.info("account %s stopped", number)
        for number, row in rows.items():
            if row.desired == RUNNING and number not in self.runners:
                self.runners[number] = Runner(self, row)
            elif row.desired != RUNNING and row.status_generation != row.generation:
                await asyncio.to_thread(self.accounts.report, number, row.generation, OFFLINE, None)

    def lead(self) -> bool:
        """Hold (or renew) the accounts' lease: one process, on one host, holds the sessions;
        the others stand by and take over within LEAD_SECONDS of its death."""
        was, self.leading = self.leading, self.leases.hold(LEADER, self.me, LEAD_SECONDS)
        if not self.leading:
            # A holder of this very host whose process is gone (killed, restarted by the
            # supervisor) need not be waited out.
            holder = self.leases.holder(LEADER) or ""
            host, _, rest = holder.partition(":")
            pid = rest.partition(":")[0]
            if host == self.settings.host_name and pid.isdigit() and not _alive(int(pid)):
                self.leading = self.leases.take_over(LEADER, holder, self.me, LEAD_SECONDS)
        if self.leading and not was:
            log.info("accounts: this process holds the Telegram accounts (%s)", self.me)
        elif was and not self.leading:
            log.warning("accounts: another process holds the Telegram accounts now; standing by")
        return self.leading

    async def stand_by(self) -> None:
        """Not the holder (any more): no session of ours stays connected."""
        await asyncio.to_thread(self.hosts.forget, self.endpoint)
        for number, runner in list(self.runners.items()):
            del self.runners[number]
            await runner.stop()

    async def take_logins(self) -> None:
        """Expire logins past their time (closing their clients), and hold the new ones."""
        await asyncio.to_thread(self.logins.expire)
        if time.monotonic() - self.logins_purged > 600:
            await asyncio.to_thread(self.logins.purge)
            self.logins_purged = time.monotonic()
        for ref, task in list(self.login_tasks.items()):
            if task.done():
                del self.login_tasks[ref]
        live = await asyncio.to_thread(self.hosts.live, STALE_AFTER)
        for row in await asyncio.to_thread(self.logins.claim, self.endpoint, live):
            if row.ref in self.login_tasks:
                continue
            try:
                client = build_login_client(self.settings)
            except SessionRevoked as exc:
                await asyncio.to_thread(self.logins.fail, row.ref, str(exc))
                continue
            self.login_tasks[row.ref] = asyncio.get_running_loop().create_task(
                self.login_driver.drive(row, client), name=f"login-{row.ref[:6]}")

    async def main(self, stop: threading.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        server = ControlServer(self).start()
        self.endpoint = server.endpoint
        last_beat = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - last_beat > HEARTBEAT:
                        leading = await asyncio.to_thread(self.lead)
                        last_beat = time.monotonic()
                        if leading:
                            await asyncio.to_thread(self.hosts.register, self.endpoint)
                    if self.leading:
                        await self.take_logins()
                        await self.reconcile()
                    elif self.runners:
                        await self.stand_by()
                except Exception as exc:  # the database away: keep the sessions, look again
                    log.warning("accounts: %s", redact(repr(exc)))
                try:
                    await asyncio.wait_for(self.wake.wait(), LOOK_EVERY)
                except asyncio.TimeoutError:
                    pass
                self.wake.clear()
        finally:
            # Say so first (a stop must not wait on a call in flight to Telegram).
            try:
                self.hosts.forget(self.endpoint)
                if self.leading:
                    self.leases.release(LEADER, self.me)
                for runner in self.runners.values():
                    self.accounts.report(runner.number, runner.generation, OFFLINE,
                                         "the accounts process stopped")
            except Exception:
                pass
            server.stop()
            for task in self.login_tasks.values():
                task.cancel()
            await asyncio.wait([asyncio.ensure_future(r.stop()) for r in self.runners.values()] or
                               [asyncio.ensure_future(asyncio.sleep(0))], timeout=3)
            self.finished.set()

    # -- control calls (from the server's threads) ---------------------------------------

    def call(self, coro_factory) -> object:
        return asyncio.run_coroutine_threadsafe(coro_factory(), self.loop).result(CALL_TIMEOUT)

    def runner_of(self, number: str) -> Runner:
        runner = self.runners.get(str(number))
        if runner is None or not runner.online or runner.client is None:
            raise ControlError(503, f"account {number} is offline")
        return runner

    def do_send(self, body: dict) -> dict:
        ref = str(body["ref"])[:191]
        done = self.sent.by_ref(ref)
        if done is not None:
            return {"id": done.tg_message_id, "repeated": True}
        runner = self.runner_of(body["account"])
        files = [OutFile(f["name"], f["mime"], base64.b64decode(f["data"])) for f in body.get("files") or []]
        peer_id = int(body["peer_id"])

        def sent(message_id: int) -> None:
            self.sent.record(SentRow(ref, runner.number, peer_id, message_id, body["origin"],
                                     body.get("planfix_message_id")))

        message_id = self.call(lambda: runner.send(peer_id, body.get("text") or "", files, sent))
        return {"id": message_id}

    def do_resolve(self, body: dict) -> dict:
        runner = self.runner_of(body["account"])
        person = self.call(lambda: runner.client.resolve(user_id=body.get("user_id"),
                                                         username=body.get("username"),
                                                         phone=body.get("phone")))
        contact = self.contacts.save(Contact(runner.number, person.id, str(person.id), person.username,
                                             person.phone or body.get("phone"), person.first_name,
                                             person.last_name))
        return {"contact": asdict(contact)}

    def do_read(self, body: dict) -> dict:
        runner = self.runner_of(body["account"])
        self.call(lambda: runner.client.mark_read(int(body["peer_id"])))
        return {"ok": True}

    def do_wake(self, body: dict) -> dict:
        self.loop.call_soon_threadsafe(self.wake.set)
        return {"ok": True}


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Quiet(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:  # one line per send is noise; errors still log
        return


class ControlServer:
    """The loopback control interface, on its own threads (a call waits for the loop)."""

    def __init__(self, host: AccountsHost) -> None:
        self.host = host
        self.token = control_token(host.box)
        self.routes = {"/send": host.do_send, "/resolve": host.do_resolve, "/read": host.do_read,
                       "/wake": host.do_wake}
        bind = host.settings.tg_accounts_rpc_host
        self.server = make_server(bind, host.settings.tg_accounts_rpc_port, self.app, threaded=True,
                                  request_handler=_Quiet)
        self.endpoint = f"{bind}:{self.server.server_port}"

    def start(self) -> "ControlServer":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True, name="accounts-control").start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def app(self, environ, start_response):
        request = Request(environ)
        status, body = self.handle(request)
        return Response(json.dumps(body), status=status, mimetype="application/json")(environ, start_response)

    def handle(self, request: Request) -> tuple[int, dict]:
        if not same_secret(request.headers.get(HEADER), self.token):
            return 403, {"error": "forbidden"}
        route = self.routes.get(request.path)
        if route is None or request.method != "POST":
            return 404, {"error": "not found"}
        try:
            return 200, route(request.get_json(silent=True) or {})
        except ControlError as exc:
            return exc.status, {"error": str(exc)}
        except FloodWait as exc:
            return 429, {"error": str(exc), "retry_after": exc.retry_after}
        except NotFound as exc:
            return 404, {"error": exc.reason}
        except Refused as exc:
            return 422, {"error": exc.reason}
        except AccountError as exc:
            return (503 if exc.transient or isinstance(exc, SessionRevoked) else 500), {"error": str(exc)[:300]}
        except (KeyError, ValueError, TypeError) as exc:
            return 400, {"error": f"bad request: {exc}"[:300]}
        except Exception as exc:  # a timeout waiting for Telegram, the database away
            log.warning("control call %s failed: %s", request.path, redact(repr(exc)))
            return 503, {"error": type(exc).__name__}


def serve(settings: Settings, stop) -> None:
    """`python -m bot accounts`: run until SIGTERM / Ctrl-C (the loop on its own thread;
    the main thread only watches for the signal)."""
    if not settings.planfix_configured:
        log.warning("Telegram accounts are not configured (PLANFIX_ADMIN_TOKEN, TG_ACCOUNTS_KEY …);"
                    " the accounts process has nothing to do")
        stop.wait()
        return
    os.umask(0o077)   # session files (and their journals) Telethon writes: the owner's only
    try:
        secure_folder(settings.tg_sessions_dir)
    except OSError as exc:
        log.warning("accounts: cannot make %s private (0700, files 0600): %s", settings.tg_sessions_dir,
                    exc.strerror)
    db = Database(settings, pool_size=4)
    host = AccountsHost(settings, db)
    try:
        resealed = host.reseal()
        if resealed:
            log.info("accounts: %d account(s) sealed again with the current key derivation", resealed)
    except Exception as exc:  # the database away: the old values still open; next start
        log.warning("accounts: resealing skipped: %s", redact(repr(exc)))
    log.info("accounts process started (backend %s)", settings.tg_accounts_backend)
    loop_thread = threading.Thread(target=lambda: asyncio.run(host.main(stop.event)),
                                   name="accounts-loop", daemon=True)
    loop_thread.start()
    stop.wait()
    host.finished.wait(5)
    db.close()
    # A long poll or a download in flight on the executor's threads is not waited for
    # (the interpreter would join them): its events come again to the next process.
    logging.shutdown()
    os._exit(0)


def _alive(pid: int) -> bool:
    """A process of this host with that number runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True

