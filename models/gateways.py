"""WhatsApp gateways' tables (migrations/0007.gateways.sql): Devino's batches over
`wa_outbox` and `jobs`, the gateways' instance states, and the files KeepDesk keeps to send
through a gateway."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.jobs import _IS_LANE_HEAD, NewJob, _dump
from models.repo import Repository
from models.whatsapp import OutboxMessage

FOLDED_HOLD = timedelta(days=1)   # a folded job waits in its lane until its batch settles


# -- instance states (Green-API) ------------------------------------------------------------

@dataclass(frozen=True)
class InstanceState:
    account: str
    state: str
    since: datetime
    checked_at: datetime
    reported_state: str | None


@dataclass(frozen=True)
class Transition:
    before: str | None
    after: str
    report: bool           # a bad state not reported yet: #ERROR now (once)
    recovered: bool        # authorized again after a bad state


class InstanceRepository(Repository):
    def get(self, account: str) -> InstanceState | None:
        row = self.db.fetchone("SELECT * FROM wa_instances WHERE account = %s", (account,))
        return InstanceState(**row) if row else None

    def all(self) -> list[InstanceState]:
        return [InstanceState(**r) for r in self.db.fetchall("SELECT * FROM wa_instances ORDER BY account")]

    def record(self, account: str, state: str, now: datetime) -> Transition:
        """Keep the state; say whether it is news worth one #ERROR (or a recovery)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT state, reported_state FROM wa_instances WHERE account = %s FOR UPDATE",
                        (account,))
            row = cur.fetchone()
            before = row["state"] if row else None
            reported = row["reported_state"] if row else None
            good = state == "authorized"
            report = not good and reported is None
            recovered = good and reported is not None
            cur.execute(
                "INSERT INTO wa_instances (account, state, since, checked_at, reported_state)"
                " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
                " since = IF(state = VALUES(state), since, VALUES(since)),"
                " state = VALUES(state), checked_at = VALUES(checked_at),"
                " reported_state = VALUES(reported_state)",
                (account, state, now, now, None if good else (state if report else reported)))
        return Transition(before, state, report, recovered)


# -- files kept for a gateway -----------------------------------------------------------------

@dataclass(frozen=True)
class KeptFile:
    id: int
    account: str
    name: str
    mime: str
    size: int
    data: bytes


class FileRepository(Repository):
    def add(self, account: str, name: str, mime: str, data: bytes) -> int:
        return self.db.insert("INSERT INTO wa_files (account, name, mime, size, data) VALUES (%s, %s, %s, %s, %s)",
                              (account, name[:255], mime[:128], len(data), data))

    def get(self, file_id: int) -> KeptFile | None:
        row = self.db.fetchone("SELECT id, account, name, mime, size, data FROM wa_files WHERE id = %s",
                               (file_id,))
        return KeptFile(**{**row, "data": bytes(row["data"])}) if row else None

    def purge_older_than(self, before: datetime) -> int:
        return self.db.execute("DELETE FROM wa_files WHERE created_at < %s", (before,))


# -- batches (Devino) ---------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    id: int
    account: str
    leader_job: int
    state: str
    messages: tuple[OutboxMessage, ...]     # in their places
    folded: tuple[tuple[int, int], ...]     # (job id, outbox id) of the jobs folded in


@dataclass(frozen=True)
class Placed:
    """What became of one message of a batch."""
    outbox_id: int
    outcome: str                  # sent | failed | skipped | later | dead
    external_id: str | None = None
    error: str | None = None
    error_code: int | None = None
    delay: float = 0.0


# What a batch sends by: WhatsApp (Devino's WhatsApp API, one account's batches) or SMS
# (Devino's SMS API: every SMS-bound message, whatever WhatsApp account it came from).
# Each has its job kind and its jobs' keys ("<prefix>:<outbox id>", a resend ":r1").
BATCH_CHANNELS = {"whatsapp": ("wa_send", "wa:out"), "sms": ("sms_send", "sms:out")}


class BatchRepository(Repository):
    def __init__(self, db, channel: str = "whatsapp") -> None:
        super().__init__(db)
        self.channel = channel
        self.kind, self.prefix = BATCH_CHANNELS[channel]

    def _keys(self, ids) -> dict[str, int]:
        ids = list(ids)
        keys = {f"{self.prefix}:{i}": i for i in ids}
        keys.update({f"{self.prefix}:{i}:r1": i for i in ids})
        return keys

    def claim(self, leader_id: int, outbox_id: int, account: str, limit: int) -> Batch:
        """The leader job's batch: the one it decided before (a re-run), or a new one — its own
        message first, then up to `limit - 1` other messages of the account that wait as the
        heads of their lanes (one per customer: a customer's messages keep their order),
        folded in one transaction: their jobs stay in their lanes, held, until the batch
        settles."""
        with self.db.transaction() as cur:
            cur.execute("SELECT batch_id FROM wa_outbox WHERE id = %s FOR UPDATE", (outbox_id,))
            row = cur.fetchone()
            if row and row["batch_id"]:
                return self._load(cur, int(row["batch_id"]), leader_id)
            if self.channel == "sms":
                cur.execute("SELECT id FROM wa_outbox WHERE channel = 'sms' AND status = 'queued'"
                            " AND batch_id IS NULL AND id <> %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                            (outbox_id, max(0, limit - 1) * 2))
            else:
                cur.execute("SELECT id FROM wa_outbox WHERE account = %s AND status = 'queued'"
                            " AND channel = 'whatsapp' AND batch_id IS NULL AND id <> %s ORDER BY id"
                            " LIMIT %s FOR UPDATE SKIP LOCKED", (account, outbox_id, max(0, limit - 1) * 2))
            candidates = [r["id"] for r in cur.fetchall()]
            folded: list[tuple[int, int]] = []
            if candidates and limit > 1:
                keys = self._keys(candidates)
                placeholders = ", ".join(["%s"] * len(keys))
                cur.execute(f"SELECT j.id, j.dedupe_key FROM jobs j WHERE j.dedupe_key IN ({placeholders})"
                            f" AND j.status = 'pending' AND j.kind = %s AND {_IS_LANE_HEAD}"
                            f" FOR UPDATE SKIP LOCKED", (*keys, self.kind))
                found = sorted((keys[r["dedupe_key"]], r["id"]) for r in cur.fetchall())
                folded = [(job_id, outbox) for outbox, job_id in found][:limit - 1]
            cur.execute("INSERT INTO wa_batches (account, leader_job, size) VALUES (%s, %s, %s)",
                        (account, leader_id, 1 + len(folded)))
            batch_id = cur.lastrowid
            for position, outbox in enumerate([outbox_id] + [o for _, o in folded]):
                cur.execute("UPDATE wa_outbox SET batch_id = %s, batch_pos = %s WHERE id = %s",
                            (batch_id, position, outbox))
            if folded:
                placeholders = ", ".join(["%s"] * len(folded))
                cur.execute(f"UPDATE jobs SET run_after = NOW(6) + INTERVAL %s SECOND, last_error = %s"
                            f" WHERE id IN ({placeholders})",
                            (int(FOLDED_HOLD.total_seconds()), f"in batch {batch_id} (job {leader_id})",
                             *[j for j, _ in folded]))
            return self._load(cur, batch_id, leader_id)

    def of_message(self, outbox_id: int, runner: int) -> Batch | None:
        """The batch this message went in, if any (never a new one)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT batch_id FROM wa_outbox WHERE id = %s", (outbox_id,))
            row = cur.fetchone()
            return self._load(cur, int(row["batch_id"]), runner) if row and row["batch_id"] else None

    def _load(self, cur, batch_id: int, runner: int) -> Batch:
        cur.execute("SELECT * FROM wa_batches WHERE id = %s", (batch_id,))
        batch = cur.fetchone()
        cur.execute("SELECT * FROM wa_outbox WHERE batch_id = %s ORDER BY batch_pos", (batch_id,))
        messages = tuple(OutboxMessage.from_row(r) for r in cur.fetchall())
        keys = self._keys(m.id for m in messages)
        placeholders = ", ".join(["%s"] * len(keys))
        cur.execute(f"SELECT id, dedupe_key FROM jobs WHERE dedupe_key IN ({placeholders})"
                    f" AND id NOT IN (%s, %s) AND status = 'pending'", (*keys, batch["leader_job"], runner))
        folded = tuple((r["id"], keys[r["dedupe_key"]]) for r in cur.fetchall())
        return Batch(batch["id"], batch["account"], batch["leader_job"], batch["state"], messages, folded)

    def attempting(self, batch_id: int, now: datetime) -> bool:
        """claimed → sending, committed before the call: a re-run then knows the call may
        have been made."""
        return self.db.execute("UPDATE wa_batches SET state = 'sending', attempted_at = %s"
                               " WHERE id = %s AND state = 'claimed'", (now, batch_id)) == 1

    def not_taken(self, batch_id: int, error: str) -> None:
        """The call was refused as a whole (nothing taken): the batch may be tried again."""
        self.db.execute("UPDATE wa_batches SET state = 'claimed', attempted_at = NULL, error = %s"
                        " WHERE id = %s AND state = 'sending'", (error[:1024], batch_id))

    def dissolve(self, batch: Batch, error: str) -> None:
        """The batch is given up before anything was taken: its messages wait again, each
        with its own job (they may form another batch)."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE wa_outbox SET batch_id = NULL, batch_pos = NULL WHERE batch_id = %s"
                        " AND status = 'queued'", (batch.id,))
            cur.execute("UPDATE wa_batches SET state = 'settled', settled_at = NOW(6), error = %s"
                        " WHERE id = %s", (error[:1024], batch.id))
            self._release(cur, [j for j, _ in batch.folded], 0.0, error)

    def settle(self, batch: Batch, placed: list[Placed], now: datetime,
               then: list[NewJob] | None = None) -> list[OutboxMessage]:
        """Each message as its result says, in one transaction with the folded jobs: sent or
        failed (done), later (waits again: its job runs after the delay), dead (its job is a
        dead letter). Returns the messages that went out now."""
        jobs_of = {outbox: job for job, outbox in batch.folded}
        sent = []
        with self.db.transaction() as cur:
            for item in placed:
                job = jobs_of.get(item.outbox_id)
                if item.outcome in ("sent", "failed", "skipped"):
                    changed = cur.execute(
                        "UPDATE wa_outbox SET status = %s, external_id = COALESCE(%s, external_id),"
                        " error_code = %s, error = %s, sent_at = IF(%s = 'sent', %s, sent_at)"
                        " WHERE id = %s AND status = 'queued'",
                        (item.outcome, item.external_id, item.error_code,
                         (item.error or None) and item.error[:1024], item.outcome, now, item.outbox_id))
                    if changed and item.outcome == "sent":
                        sent.append(item.outbox_id)
                    if job is not None:
                        self._done(cur, [job], f"settled in batch {batch.id}")
                elif item.outcome == "later":
                    cur.execute("UPDATE wa_outbox SET batch_id = NULL, batch_pos = NULL, error = %s"
                                " WHERE id = %s AND status = 'queued'", (item.error, item.outbox_id))
                    if job is not None:
                        self._release(cur, [job], item.delay, item.error or "later")
                elif item.outcome == "dead":
                    cur.execute("UPDATE wa_outbox SET status = 'failed', error_code = %s, error = %s"
                                " WHERE id = %s AND status = 'queued'",
                                (item.error_code, (item.error or "")[:1024], item.outbox_id))
                    if job is not None:
                        cur.execute("UPDATE jobs SET status = 'failed', last_error = %s WHERE id = %s",
                                    ((item.error or "")[:4000], job))
            cur.execute("UPDATE wa_batches SET state = 'settled', settled_at = %s WHERE id = %s", (now, batch.id))
            if then:
                for job in then:
                    cur.execute("INSERT IGNORE INTO jobs (queue, kind, dedupe_key, lane, payload)"
                                " VALUES (%s, %s, %s, %s, %s)",
                                (job.queue, job.kind, job.dedupe_key, job.lane, _dump(job.payload)))
            if sent:
                placeholders = ", ".join(["%s"] * len(sent))
                cur.execute(f"SELECT * FROM wa_outbox WHERE id IN ({placeholders}) ORDER BY batch_pos", sent)
                return [OutboxMessage.from_row(r) for r in cur.fetchall()]
        return []

    def unknown(self, batch: Batch, error: str, confirm_by: datetime) -> int:
        """The call may have been taken, but its answer is lost (or does not fit the request):
        nothing is marked sent and nothing is sent again blindly — each message waits for a
        status callback naming it until `confirm_by`."""
        with self.db.transaction() as cur:
            changed = cur.execute("UPDATE wa_outbox SET status = 'unknown', confirm_by = %s, error = %s"
                                  " WHERE batch_id = %s AND status = 'queued'",
                                  (confirm_by, error[:1024], batch.id))
            cur.execute("UPDATE wa_batches SET state = 'unknown', settled_at = NOW(6), error = %s"
                        " WHERE id = %s", (error[:1024], batch.id))
            self._done(cur, [j for j, _ in batch.folded], f"batch {batch.id}: {error}"[:4000])
        return changed

    @staticmethod
    def _done(cur, job_ids: list[int], note: str) -> None:
        if job_ids:
            placeholders = ", ".join(["%s"] * len(job_ids))
            cur.execute(f"UPDATE jobs SET status = 'done', last_error = %s, lease_until = NULL"
                        f" WHERE id IN ({placeholders}) AND status = 'pending'", (note[:4000], *job_ids))

    @staticmethod
    def _release(cur, job_ids: list[int], delay: float, note: str) -> None:
        if job_ids:
            placeholders = ", ".join(["%s"] * len(job_ids))
            cur.execute(f"UPDATE jobs SET run_after = NOW(6) + INTERVAL %s MICROSECOND, last_error = %s"
                        f" WHERE id IN ({placeholders}) AND status = 'pending'",
                        (int(delay * 1e6), note[:4000], *job_ids))

    # -- messages whose batch's answer was lost ---------------------------------------------

    def confirmed(self, outbox_id: int, external_id: str,
                  now: datetime) -> tuple[OutboxMessage, bool] | None:
        """A status callback named a message of a batch not settled yet: it was sent, with
        this id. Returns it, and whether its batch's answer had been lost (`unknown`)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT status FROM wa_outbox WHERE id = %s FOR UPDATE", (outbox_id,))
            before = cur.fetchone()
            # `unknown`: its batch's answer was lost; `queued` in a batch: the callback came
            # before the answer (or before a re-run marked it unknown).
            if cur.execute("UPDATE wa_outbox SET status = 'sent', external_id = %s, sent_at = %s,"
                           " confirm_by = NULL, error = NULL WHERE id = %s AND (status = 'unknown'"
                           " OR (status = 'queued' AND batch_id IS NOT NULL))",
                           (external_id, now, outbox_id)) != 1:
                return None
            cur.execute("SELECT * FROM wa_outbox WHERE id = %s", (outbox_id,))
            return OutboxMessage.from_row(cur.fetchone()), before["status"] == "unknown"

    def unconfirmed(self, now: datetime, limit: int = 200) -> list[OutboxMessage]:
        return [OutboxMessage.from_row(r) for r in self.db.fetchall(
            "SELECT * FROM wa_outbox WHERE status = 'unknown' AND confirm_by < %s AND channel = %s"
            " ORDER BY confirm_by LIMIT %s", (now, self.channel, limit))]

    def resend(self, message: OutboxMessage, job: NewJob) -> bool:
        """No word of it after the wait: it is queued once more (its new job stored with it)."""
        with self.db.transaction() as cur:
            if cur.execute("UPDATE wa_outbox SET status = 'queued', batch_id = NULL, batch_pos = NULL,"
                           " confirm_by = NULL, resends = resends + 1 WHERE id = %s AND status = 'unknown'",
                           (message.id,)) != 1:
                return False
            cur.execute("INSERT IGNORE INTO jobs (queue, kind, dedupe_key, lane, payload) VALUES (%s, %s, %s, %s, %s)",
                        (job.queue, job.kind, job.dedupe_key, job.lane, _dump(job.payload)))
        return True

    def give_up(self, message: OutboxMessage, error: str) -> bool:
        return self.db.execute("UPDATE wa_outbox SET status = 'failed', error = %s, confirm_by = NULL"
                               " WHERE id = %s AND status = 'unknown'", (error[:1024], message.id)) == 1

    def resends_of(self, outbox_id: int) -> int:
        return self.db.scalar("SELECT resends FROM wa_outbox WHERE id = %s", (outbox_id,)) or 0
