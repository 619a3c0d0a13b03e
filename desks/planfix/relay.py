"""Planfix as a desk: the durable steps between the shop's Telegram accounts and Planfix's
chat API (CHANNELS.md §5). Each is a job with an idempotency key, executed at most once;
a retry resumes at the first step not done.

* `pf_message` — one message of a Telegram account's private chat → `newMessage` to
  Planfix: the contact's fields, the file as a short-lived signed link on the
  integrations door, `isEcho=true` for what the shop wrote (its owner's phone, or a desk
  manager's answer). Key: account + Telegram message id.
* `pf_status` — `messageStatus` (sent / read / error) of a message Planfix asked us to
  deliver. Key: Planfix message id + status.
* `pf_deliver` — a message from Planfix → fetch its attachments (bounded, through the
  guarded fetcher: public addresses or exactly a configured origin) → send it once
  through the account (the accounts process records it under the reference
  `pf:<account>:<messageId>`, so a repeated step never sends twice) → `messageStatus
  sent`; a recipient Telegram refuses (privacy, blocked, unknown) or an attachment that
  cannot be fetched → `messageStatus error` with the reason.

The fields of `messageStatus error`: the reason goes in `messageStatusText`, the field
Planfix documents for it (the employee sees it beside the error icon), and as `errorText`
too, which earlier Planfix builds read.
"""
from __future__ import annotations

import logging

from channels.tgaccount.account import AccountError, OutFile
from channels.tgaccount.control import AccountsControl
from config import Settings
from desks.planfix import wire
from models.db import Database
from models.jobs import SEND, Done, Job, NewJob, Permanent
from models.tgaccounts import PLANFIX, AccountRepository, ContactRepository
from utils import fetch, keys
from utils.secretbox import SecretBox
from utils.signed import signed_url

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10
MEDIA_PATH = "/media/{id}"


def status_job(account: str, planfix_message_id: str, chat_id: str | None, status: str,
               reason: str | None = None) -> NewJob:
    payload = {"account": account, "planfix_message_id": planfix_message_id, "chat_id": chat_id,
               "status": status}
    if reason:
        payload["reason"] = reason[:500]
    # One lane per Planfix message: its statuses are told in the order they were decided.
    return NewJob(SEND, "pf_status", payload, dedupe_key=f"pf:status:{account}:{planfix_message_id}:{status}",
                  lane=f"pf-api:{account}:{planfix_message_id}")


class PlanfixRelay:
    def __init__(self, settings: Settings, db: Database, control: AccountsControl | None = None) -> None:
        self.settings = settings
        self.box = SecretBox(settings.tg_accounts_key)
        self.accounts = AccountRepository(db)
        self.contacts = ContactRepository(db)
        self.control = control
        self.fetcher = fetch.for_settings(settings, read_timeout=30.0)
        # url_planfix is set through the clients API: its calls are guarded like a download
        # (a public address, or exactly a configured origin such as FETCH_TRUSTED_ORIGINS).
        self.http = self.fetcher.session()

    def handlers(self) -> dict:
        return {"pf_message": self.new_message, "pf_status": self.message_status,
                "pf_deliver": self.deliver}

    def _account(self, number: str):
        row = self.accounts.get(number)
        if row is None:
            raise Permanent("Planfix relay: the account is gone", f"account {number}")
        return row, self.box.open(row.token_planfix_enc)

    def _call(self, url: str, fields: list[tuple[str, str]], what: str) -> None:
        try:
            wire.call(url, fields, session=self.http)
        except wire.PlanfixRejected as exc:
            # 400 / 401: the data or the token is wrong; a retry cannot fix it.
            raise Permanent(f"Planfix refused {what}", str(exc)) from exc
        except fetch.Refused as exc:
            raise Permanent(f"Planfix's address is not called for {what}", str(exc)) from None
        except fetch.Unreachable as exc:
            raise wire.PlanfixUnavailable(f"Planfix unreachable: {exc}") from None

    # -- Telegram → Planfix -------------------------------------------------------------

    def media_url(self, media_id: int, ttl: float | None = None) -> str:
        return signed_url(self.settings.public_url, MEDIA_PATH.format(id=media_id),
                          keys.derive(self.settings, keys.MEDIA_LINKS),
                          ttl=ttl or self.settings.signed_url_ttl)

    def new_message(self, job: Job) -> None:
        data = job.payload
        row, token = self._account(data["account"])
        customer = data.get("customer") or {}
        contact = self.contacts.by_user(data["account"], int(data["peer_id"]))
        first = (customer.get("first_name") or (contact.first_name if contact else None)
                 or customer.get("username") or (contact.username if contact else None) or "Telegram")
        last = customer.get("last_name") or (contact.last_name if contact else None)
        phone = customer.get("phone") or (contact.phone if contact else None)
        media = data.get("media")
        text = data.get("text") or ""
        if not text and media:
            text = media["name"] if media.get("media_id") else f"[{media['kind']}: {media['name']} — not relayed, too big]"
        fields = [("cmd", "newMessage"), ("providerId", self.settings.planfix_provider_id),
                  ("planfix_token", token), ("chatId", contact.chat_id if contact else str(data["peer_id"])),
                  ("message", text), ("contactId", str(data["peer_id"])), ("contactName", first)]
        if last:
            fields.append(("contactLastName", last))
        if phone:
            fields.append(("contactPhone", phone))
        username = customer.get("username") or (contact.username if contact else None)
        if username:
            fields.append(("telegramUserName", username))
        fields.append(("telegramUserId", str(data["peer_id"])))
        if media and media.get("media_id"):
            fields += [("attachments[name]", media["name"]), ("attachments[url]", self.media_url(media["media_id"]))]
        if data.get("outgoing"):
            fields.append(("isEcho", "true"))
        self._call(row.url_planfix, fields, "newMessage")

    def message_status(self, job: Job) -> None:
        data = job.payload
        row, token = self._account(data["account"])
        fields = [("cmd", "messageStatus"), ("providerId", self.settings.planfix_provider_id),
                  ("planfix_token", token), ("messageId", data["planfix_message_id"]),
                  ("messageStatus", data["status"])]
        if data.get("chat_id"):
            fields.append(("chatId", data["chat_id"]))
        if data.get("reason"):
            fields += [("messageStatusText", data["reason"]), ("errorText", data["reason"])]
        self._call(row.url_planfix, fields, "messageStatus")

    # -- Planfix → Telegram -------------------------------------------------------------

    def deliver(self, job: Job) -> Done:
        data = job.payload
        number, message_id, chat_id = data["account"], str(data["planfix_message_id"]), data.get("chat_id")
        try:
            files = [self._fetch(item) for item in data.get("attachments", [])[:MAX_ATTACHMENTS]]
        except _Unfetchable as exc:
            return Done(then=(status_job(number, message_id, chat_id, "error", str(exc)),))
        try:
            self.control.send(number, int(data["peer_id"]), data.get("text") or "", files,
                              ref=f"pf:{number}:{message_id}", origin=PLANFIX,
                              planfix_message_id=message_id)
        except AccountError as exc:
            if exc.transient:
                raise  # the account is away, or a FLOOD_WAIT: later (retry_after is obeyed)
            reason = getattr(exc, "reason", str(exc))
            log.warning("Planfix message %s not delivered: %s", message_id, reason)
            return Done(then=(status_job(number, message_id, chat_id, "error", reason),))
        return Done(then=(status_job(number, message_id, chat_id, "sent"),))

    def _fetch(self, item: dict) -> OutFile:
        limit, name = self.settings.media_max_bytes, item.get("name") or ""
        try:
            got = self.fetcher.get(str(item.get("url") or ""), max_bytes=limit)
        except fetch.Unreachable as exc:
            raise wire.PlanfixUnavailable(f"attachment: {exc}") from None
        except fetch.Refused as exc:
            log.warning("Planfix attachment %r refused: %s", name[:100], exc)
            raise _Unfetchable(f"attachment {name} could not be fetched: {exc}") from None
        if got.status >= 500:
            raise wire.PlanfixUnavailable(f"attachment: HTTP {got.status}")
        if got.status != 200:
            raise _Unfetchable(f"attachment {name} could not be fetched (HTTP {got.status})")
        return OutFile(name or "file", got.mime, got.data)


class _Unfetchable(Exception):
    pass
