"""WhatsApp's and the 1C API's tables (migrations/0004.whatsapp.sql): delivery statuses,
the messages KeepDesk sends on its own (`wa_outbox`), and the 1C dialogue's state —
appointments, unsubscribed phones, reviews, repeated requests, API tokens."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.repo import Repository

SENT, DELIVERED, READ, FAILED = "sent", "delivered", "read", "failed"
STATUSES = (SENT, DELIVERED, READ, FAILED)


# -- delivery statuses ----------------------------------------------------------------------

class DeliveryStatusRepository(Repository):
    def record(self, cur, conversation_id: int, external_id: str, status: str, at: datetime,
               error_code: int | None = None, error: str | None = None) -> bool:
        """Keep the furthest status (sent < delivered < read < failed); True when this one
        moved it on (a repeated or late status changes nothing)."""
        changed = self._execute(
            cur,
            "INSERT INTO delivery_statuses (conversation_id, external_id, status, error_code, error,"
            " status_at) VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
            " error_code = IF(FIELD(VALUES(status), 'sent','delivered','read','failed')"
            "                 > FIELD(status, 'sent','delivered','read','failed'), VALUES(error_code), error_code),"
            " error = IF(FIELD(VALUES(status), 'sent','delivered','read','failed')"
            "            > FIELD(status, 'sent','delivered','read','failed'), VALUES(error), error),"
            " status_at = IF(FIELD(VALUES(status), 'sent','delivered','read','failed')"
            "                > FIELD(status, 'sent','delivered','read','failed'), VALUES(status_at), status_at),"
            " status = IF(FIELD(VALUES(status), 'sent','delivered','read','failed')"
            "             > FIELD(status, 'sent','delivered','read','failed'), VALUES(status), status)",
            (conversation_id, external_id, status, error_code, (error or None) and error[:1024], at))
        return changed in (1, 2)

    def get(self, conversation_id: int, external_id: str) -> dict | None:
        return self.db.fetchone("SELECT status, error_code, error, status_at FROM delivery_statuses"
                                " WHERE conversation_id = %s AND external_id = %s",
                                (conversation_id, external_id))


# -- what KeepDesk sends on its own ---------------------------------------------------------

@dataclass(frozen=True)
class OutboxMessage:
    id: int
    account: str
    phone: str
    purpose: str
    kind: str
    body: dict
    status: str
    external_id: str | None
    conversation_id: int | None
    error_code: int | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    attempted_at: datetime | None = None   # an attempt to send it began (its outcome may be unknown)
    batch_id: int | None = None             # a Devino batch it went (or goes) in
    channel: str = "whatsapp"               # whatsapp | sms (WhatsApp could not deliver it)
    wa_error_code: int | None = None        # why WhatsApp could not, when it went by SMS
    wa_error: str | None = None
    sms_queued_at: datetime | None = None   # when it was queued for SMS

    @classmethod
    def from_row(cls, row: dict) -> "OutboxMessage":
        return cls(id=row["id"], account=row["account"], phone=row["phone"], purpose=row["purpose"],
                   kind=row["kind"], body=json.loads(row["body"]), status=row["status"],
                   external_id=row["external_id"], conversation_id=row["conversation_id"],
                   error_code=row["error_code"], error=row["error"], created_at=row["created_at"],
                   sent_at=row["sent_at"], attempted_at=row.get("attempted_at"), batch_id=row.get("batch_id"),
                   channel=row.get("channel") or "whatsapp", wa_error_code=row.get("wa_error_code"),
                   wa_error=row.get("wa_error"), sms_queued_at=row.get("sms_queued_at"))


class OutboxRepository(Repository):
    def add(self, cur, *, account: str, phone: str, purpose: str, kind: str, body: dict,
            status: str = "queued", error: str | None = None) -> int:
        sql = ("INSERT INTO wa_outbox (account, phone, purpose, kind, body, status, error)"
               " VALUES (%s, %s, %s, %s, %s, %s, %s)")
        args = (account, phone, purpose, kind, json.dumps(body, ensure_ascii=False), status, error)
        if cur is None:
            return self.db.insert(sql, args)
        cur.execute(sql, args)
        return cur.lastrowid

    def get(self, outbox_id: int, cur=None) -> OutboxMessage | None:
        row = self._one(cur, "SELECT * FROM wa_outbox WHERE id = %s", (outbox_id,))
        return OutboxMessage.from_row(row) if row else None

    def mark_attempt(self, outbox_id: int, at: datetime) -> None:
        """An attempt to send it begins (kept, so a retry knows one may have gone out)."""
        self.db.execute("UPDATE wa_outbox SET attempted_at = COALESCE(attempted_at, %s) WHERE id = %s",
                        (at, outbox_id))

    def settle(self, cur, outbox_id: int, status: str, now: datetime, *, external_id: str | None = None,
               conversation_id: int | None = None, error_code: int | None = None,
               error: str | None = None) -> bool:
        """queued → sent / failed, once."""
        return self._execute(
            cur, "UPDATE wa_outbox SET status = %s, external_id = COALESCE(%s, external_id),"
                 " conversation_id = COALESCE(%s, conversation_id), error_code = %s, error = %s,"
                 " sent_at = IF(%s = 'sent', %s, sent_at) WHERE id = %s AND status = 'queued'",
            (status, external_id, conversation_id, error_code, (error or None) and error[:1024],
             status, now, outbox_id)) == 1

    def fail_by_external(self, cur, external_id: str, error_code: int | None, error: str | None) -> None:
        """A message WhatsApp took and then could not deliver (a `failed` status)."""
        self._execute(cur, "UPDATE wa_outbox SET status = 'failed', error_code = %s, error = %s"
                           " WHERE external_id = %s AND channel = 'whatsapp'",
                      (error_code, (error or None) and error[:1024], external_id))

    def by_external(self, external_id: str) -> OutboxMessage | None:
        row = self.db.fetchone("SELECT * FROM wa_outbox WHERE external_id = %s LIMIT 1", (external_id,))
        return OutboxMessage.from_row(row) if row else None

    def sent_since(self, phone: str, purpose: str, since: datetime, cur=None) -> bool:
        """Was a `purpose` message queued or sent to this phone since then?"""
        return self._one(cur, "SELECT 1 AS yes FROM wa_outbox WHERE phone = %s AND purpose = %s"
                              " AND status IN ('queued', 'sent') AND created_at >= %s LIMIT 1",
                         (phone, purpose, since)) is not None


# -- the 1C API's state -------------------------------------------------------------------

class OnecRepository(Repository):
    # Repeated requests
    def claim_request(self, cur, fingerprint: str, now: datetime, window: timedelta | None) -> bool:
        """True when this request is new (or its window passed): it may send. One statement,
        so two identical requests racing each other send once. `window` None: never again."""
        since = now - window if window is not None else datetime(1970, 1, 1)
        affected = self._execute(
            cur, "INSERT INTO onec_requests (fingerprint, last_at) VALUES (%s, %s)"
                 " ON DUPLICATE KEY UPDATE last_at = IF(last_at < %s AND %s, VALUES(last_at), last_at)",
            (fingerprint, now, since, window is not None))
        return affected in (1, 2)

    def request_seen(self, fingerprint: str) -> bool:
        return self.db.fetchone("SELECT 1 AS yes FROM onec_requests WHERE fingerprint = %s",
                                (fingerprint,)) is not None

    def link_request(self, cur, fingerprint: str, outbox_id: int) -> None:
        self._execute(cur, "UPDATE onec_requests SET outbox_id = %s WHERE fingerprint = %s",
                      (outbox_id, fingerprint))

    # Unsubscribed phones
    def unsubscribe(self, cur, phone: str, account: str, now: datetime) -> bool:
        return self._execute(cur, "INSERT IGNORE INTO unsubscribed_phones (phone, account, created_at)"
                                  " VALUES (%s, %s, %s)", (phone, account, now)) == 1

    def is_unsubscribed(self, phone: str, cur=None) -> bool:
        return self._one(cur, "SELECT 1 AS yes FROM unsubscribed_phones WHERE phone = %s",
                         (phone,)) is not None

    def unsubscribed_phones(self) -> list[str]:
        return [r["phone"] for r in self.db.fetchall(
            "SELECT phone FROM unsubscribed_phones ORDER BY created_at, phone")]

    # Appointments
    def add_appointment(self, cur, *, phone: str, account: str, outbox_id: int, doctor: str,
                        date: str, time: str, now: datetime) -> int:
        self._execute(cur, "INSERT INTO appointments (phone, account, outbox_id, doctor, date, time,"
                           " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                      (phone, account, outbox_id, doctor, date, time, now))
        return cur.lastrowid

    def latest_appointment(self, phone: str, cur=None) -> dict | None:
        return self._one(cur, "SELECT * FROM appointments WHERE phone = %s ORDER BY id DESC LIMIT 1",
                         (phone,))

    def confirm_appointment(self, cur, appointment_id: int, now: datetime) -> bool:
        return self._execute(cur, "UPDATE appointments SET state = 'confirmed', confirmed_at = %s"
                                  " WHERE id = %s AND state = 'waiting'", (now, appointment_id)) == 1

    def confirmed_phones(self) -> list[str]:
        """Phones whose newest appointment notice was confirmed."""
        return [r["phone"] for r in self.db.fetchall(
            "SELECT a.phone FROM appointments a JOIN (SELECT phone, MAX(id) AS id FROM appointments"
            " GROUP BY phone) newest ON newest.id = a.id WHERE a.state = 'confirmed'"
            " ORDER BY a.confirmed_at, a.phone")]

    # Reviews
    def add_review(self, cur, *, phone: str, account: str, outbox_id: int, name: str,
                   date: str | None, now: datetime) -> int:
        # A newer request replaces an unfinished older one: the customer answers the last.
        self._execute(cur, "UPDATE reviews SET state = 'done', finished_at = %s WHERE phone = %s"
                           " AND state <> 'done'", (now, phone))
        self._execute(cur, "INSERT INTO reviews (phone, account, outbox_id, name, date, created_at)"
                           " VALUES (%s, %s, %s, %s, %s, %s)",
                      (phone, account, outbox_id, name, date, now))
        return cur.lastrowid

    def open_review(self, phone: str, since: datetime, cur=None) -> dict | None:
        return self._one(cur, "SELECT * FROM reviews WHERE phone = %s AND state <> 'done'"
                              " AND created_at >= %s ORDER BY id DESC LIMIT 1", (phone, since))

    def review_scored(self, cur, review_id: int, score: int) -> bool:
        return self._execute(cur, "UPDATE reviews SET state = 'text', score = %s"
                                  " WHERE id = %s AND state = 'score'", (score, review_id)) == 1

    def review_done(self, cur, review_id: int, text: str, now: datetime,
                    conversation_id: int | None) -> bool:
        return self._execute(cur, "UPDATE reviews SET state = 'done', text = %s, finished_at = %s,"
                                  " conversation_id = %s WHERE id = %s AND state = 'text'",
                             (text, now, conversation_id, review_id)) == 1

    def finished_reviews(self, since: datetime | None, limit: int) -> list[dict]:
        return self.db.fetchall(
            "SELECT id, phone, name, date, score, text, conversation_id, created_at, finished_at"
            " FROM reviews WHERE state = 'done' AND score IS NOT NULL AND finished_at >= %s"
            " ORDER BY finished_at, id LIMIT %s", (since or datetime(1970, 1, 1), limit))


# -- API tokens -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenRepository(Repository):
    def add(self, name: str, token_hash: str) -> int:
        return self.db.insert("INSERT INTO api_tokens (name, token_hash) VALUES (%s, %s)",
                              (name, token_hash))

    def find(self, token_hash: str) -> tuple[int, str] | None:
        """(id, stored hash) of the live token with this hash."""
        row = self.db.fetchone("SELECT id, token_hash FROM api_tokens WHERE token_hash = %s"
                               " AND revoked_at IS NULL", (token_hash,))
        return (row["id"], row["token_hash"]) if row else None

    def used(self, token_id: int) -> None:
        self.db.execute("UPDATE api_tokens SET last_used_at = NOW(6) WHERE id = %s"
                        " AND (last_used_at IS NULL OR last_used_at < NOW(6) - INTERVAL 1 MINUTE)",
                        (token_id,))

    def all(self) -> list[ApiToken]:
        return [ApiToken(r["id"], r["name"], r["created_at"], r["last_used_at"], r["revoked_at"])
                for r in self.db.fetchall("SELECT id, name, created_at, last_used_at, revoked_at"
                                          " FROM api_tokens ORDER BY id")]

    def revoke_id(self, token_id: int) -> int:
        """Revoke the live token with this id (never one that is merely named like it)."""
        return self.db.execute("UPDATE api_tokens SET revoked_at = NOW(6) WHERE revoked_at IS NULL"
                               " AND id = %s", (token_id,))

    def revoke_name(self, name: str) -> int:
        """Revoke the live tokens with exactly this name (never one whose id reads like it)."""
        return self.db.execute("UPDATE api_tokens SET revoked_at = NOW(6) WHERE revoked_at IS NULL"
                               " AND name = %s", (name,))

