"""Relay a Telegram account's events to the desk(s) routing names (CHANNELS.md §5).

`TG_ACCOUNTS_ROUTING`: `planfix` (default) — Planfix only; `desk` — the Telegram desk
only; `both` — both, so a manager may answer from Telegram and Planfix sees that answer
as an echo. Whichever side answers, the other side sees it:

| the message | Planfix gets | the Telegram desk gets |
|---|---|---|
| a customer wrote | `newMessage` | a post, as for any channel |
| the owner typed on their phone | `newMessage isEcho=true` | a shop message (counts as an answer) |
| a desk manager answered | `newMessage isEcho=true` | (their own answer) a shop message |
| Planfix answered (we sent it) | nothing: it is Planfix's own | a shop message |

`tga_message` (one job per account + message id) stores the message in the desk's
conversation through the one ingest service and decides the Planfix step in the same
completion (`Done(then=…)`), so neither is lost nor done twice. `tga_read` turns "the
customer read up to N" into `messageStatus read` for each message Planfix sent.
"""
from __future__ import annotations

from datetime import datetime, timezone

from channels.base import Incoming
from channels.tgaccount import TGACCOUNT
from config import Settings
from desks.planfix.relay import PlanfixRelay, status_job
from models.db import Database
from models.inbound import ConversationInfo, ConversationKey, InboundMessage
from models.jobs import SEND, Done, Job, JobQueue, NewJob
from models.tgaccounts import PLANFIX, SentRepository

# A desk post's link to a customer's file lives as long as the stored file.
DESK_LINK_TTL = 30 * 86400


def to_planfix(routing: str) -> bool:
    return routing in ("planfix", "both")


def to_desk(routing: str) -> bool:
    return routing in ("desk", "both")


def _name(customer: dict | None) -> str | None:
    if not customer:
        return None
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    return name or (f"@{customer['username']}" if customer.get("username") else None)


class RelayMessage:
    """The `tga_message` job."""

    def __init__(self, settings: Settings, ingest, planfix: PlanfixRelay) -> None:
        self.routing = settings.tg_accounts_routing
        self.ingest = ingest
        self.planfix = planfix

    def __call__(self, job: Job) -> Done:
        data = job.payload
        if to_desk(self.routing):
            self.ingest(self.incoming(data))
        then = ()
        if to_planfix(self.routing) and data.get("origin") != PLANFIX:
            then = (NewJob(SEND, "pf_message", data, dedupe_key=f"pf:msg:{data['account']}:{data['message_id']}",
                           lane=f"pf-api:{data['account']}:{data['peer_id']}"),)
        return Done(then=then)

    def incoming(self, data: dict) -> Incoming:
        customer = data.get("customer") if not data.get("outgoing") else None
        media = data.get("media")
        url = self.planfix.media_url(media["media_id"], DESK_LINK_TTL) if media and media.get("media_id") else None
        written = (datetime.fromtimestamp(data["date"], timezone.utc).replace(tzinfo=None)
                   if data.get("date") else None)
        message = InboundMessage(
            external_id=str(data["message_id"]), from_customer=not data.get("outgoing"),
            text=data.get("text") or "", is_img=bool(media and media["kind"] == "photo" and url),
            is_file=bool(media and media["kind"] != "photo"), filename=media["name"] if media else None,
            url=url, preview=url if media and media["kind"] == "photo" else None, date_written=written)
        info = None
        if customer:
            name = _name(customer)
            info = ConversationInfo(title=name, customer_name=name, customer_phone=customer.get("phone"),
                                    customer_tg_id=int(customer["id"]))
        return Incoming(ConversationKey(TGACCOUNT, data["account"], str(data["peer_id"])), [message], info)


class RelayRead:
    """The `tga_read` job: the customer read the account's messages up to `max_id`. The
    rows are marked read in the transaction that queues their statuses: both or neither."""

    def __init__(self, db: Database, jobs: JobQueue) -> None:
        self.db = db
        self.jobs = jobs
        self.sent = SentRepository(db)

    def __call__(self, job: Job) -> None:
        data = job.payload
        rows = self.sent.unread_up_to(data["account"], int(data["peer_id"]), int(data["max_id"]))
        with self.db.transaction() as cur:
            self.sent.mark_read(cur, [r.ref for r in rows])
            self.jobs.enqueue_all([status_job(r.account, r.planfix_message_id, None, "read")
                                   for r in rows if r.origin == PLANFIX and r.planfix_message_id], cur)


def relay_handlers(settings: Settings, db: Database, jobs: JobQueue, ingest, control) -> dict:
    """Job kind → handler of the relay (empty without Telegram accounts configured)."""
    if not settings.planfix_configured:
        return {}
    planfix = PlanfixRelay(settings, db, control)
    return {"tga_message": RelayMessage(settings, ingest, planfix), "tga_read": RelayRead(db, jobs),
            **planfix.handlers()}
