"""SMS instead of WhatsApp (migrations/0014.sms.sql): a notice WhatsApp could not deliver
is carried on by the same `wa_outbox` record, now `channel = 'sms'`, with its own job."""
from __future__ import annotations

from datetime import datetime

from models.jobs import SEND, NewJob, _dump
from models.repo import Repository
from models.whatsapp import OutboxMessage


class SmsRepository(Repository):
    def failed_notices(self, purposes: tuple[str, ...], since: datetime, limit: int = 200) -> list[int]:
        """WhatsApp notices of these purposes that failed since then (not gone by SMS yet)."""
        placeholders = ", ".join(["%s"] * len(purposes))
        return [r["id"] for r in self.db.fetchall(
            f"SELECT id FROM wa_outbox WHERE channel = 'whatsapp' AND status = 'failed' AND created_at >= %s"
            f" AND purpose IN ({placeholders}) ORDER BY created_at LIMIT %s", (since, *purposes, limit))]

    def switch(self, cur, outbox_id: int, now: datetime) -> bool:
        """WhatsApp failed it: it goes by SMS — decided once, with its `sms_send` job, in
        `cur`'s transaction. WhatsApp's reason is kept; its own id is dropped (a late
        WhatsApp status about it must not touch the SMS)."""
        cur.execute("SELECT phone FROM wa_outbox WHERE id = %s AND channel = 'whatsapp' AND status = 'failed'"
                    " FOR UPDATE", (outbox_id,))
        row = cur.fetchone()
        if row is None:
            return False
        changed = cur.execute(
            "UPDATE wa_outbox SET channel = 'sms', status = 'queued', wa_error_code = error_code,"
            " wa_error = error, error_code = NULL, error = NULL, external_id = NULL, batch_id = NULL,"
            " batch_pos = NULL, confirm_by = NULL, resends = 0, attempted_at = NULL, sent_at = NULL,"
            " sms_queued_at = %s WHERE id = %s AND channel = 'whatsapp' AND status = 'failed'", (now, outbox_id))
        if changed != 1:
            return False
        job = NewJob(SEND, "sms_send", {"outbox_id": outbox_id}, dedupe_key=f"sms:out:{outbox_id}",
                     lane=f"sms:{row['phone']}")
        cur.execute("INSERT IGNORE INTO jobs (queue, kind, dedupe_key, lane, payload) VALUES (%s, %s, %s, %s, %s)",
                    (job.queue, job.kind, job.dedupe_key, job.lane, _dump(job.payload)))
        return True

    def give_up(self, outbox_id: int, error: str) -> None:
        """Its `sms_send` job is a dead letter: the record says why."""
        self.db.execute("UPDATE wa_outbox SET status = 'failed', error = %s, batch_id = NULL, batch_pos = NULL"
                        " WHERE id = %s AND channel = 'sms' AND status = 'queued'", (error[:1000], outbox_id))

    def by_sms_id(self, external_id: str) -> OutboxMessage | None:
        row = self.db.fetchone("SELECT * FROM wa_outbox WHERE external_id = %s AND channel = 'sms' LIMIT 1",
                               (external_id,))
        return OutboxMessage.from_row(row) if row else None

    def failed_delivery(self, cur, outbox_id: int, error_code: int | None, error: str | None) -> bool:
        """The SMS was taken but could not be delivered (an UNDELIVERED / EXPIRED status)."""
        return cur.execute("UPDATE wa_outbox SET status = 'failed', error_code = %s, error = %s"
                           " WHERE id = %s AND channel = 'sms' AND status = 'sent'",
                           (error_code, (error or None) and error[:1024], outbox_id)) == 1
