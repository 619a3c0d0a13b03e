"""Planfix's calls to us: `POST /planfix/webhook`, form-encoded (CHANNELS.md §5).

`cmd=newMessage` (`providerId, chatId?, token, message, messageId, userName, userLastName,
contactPhone?, channel?, attachments…, telegramUserId?, telegramUserName?`):

1. the body is parsed into bounded values; the token (the client token) is checked in
   constant time against the account named by `channel` (the account's number) — or,
   without `channel`, the one account the token belongs to; wrong → 401
   `{"error": "Invalid token"}`; missing fields → 400 `{"error": "Invalid parameters"}`;
2. the recipient is found: a chat we know (`chatId`), else by `telegramUserId`, then
   `telegramUserName`, then `contactPhone` — first among the contacts we know, then by
   asking the account (importing the phone as a contact when needed), bounded by
   PLANFIX_RESOLVE_TIMEOUT; nobody found → 404 `{"error": "Recipient not found"}`; the
   account offline → 503: nothing is stored, nothing is half-done;
3. the delivery is stored as a durable step (`pf_deliver`, key: account + messageId)
   and a worker woken; only then the answer `{"chatId", "contactId"}` — for a first
   message with only a phone too: the chat is the customer's Telegram id, which their
   replies will carry as well. The send and its `messageStatus` follow from the queue.

Why resolve before answering: Planfix wants the ids in the answer, and a message that
can never reach anybody should be refused now, not accepted and lost later. Sending
stays out of the request: a slow Telegram never holds Planfix's call, and a crash after
the answer loses nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, jsonify, request

from channels.tgaccount.account import AccountError, NotFound
from channels.tgaccount.control import AccountsControl
from config import Settings
from desks.planfix.clients import normalise_number
from models.jobs import UPDATES, JobQueue
from models.tgaccounts import AccountHostRepository, AccountRepository, Contact, ContactRepository
from utils.http import bound
from utils.secretbox import SecretBox, same_hash

MAX_TEXT = 4096
_ATTACHMENT = re.compile(r"^attachments(?:\[(\d+)\])?\[(name|url)\]$")
_USERNAME = re.compile(r"^@?([A-Za-z0-9_]{4,32})$")


class Invalid(ValueError):
    pass


@dataclass(frozen=True)
class PlanfixMessage:
    token: str
    message_id: str
    chat_id: str | None
    text: str
    channel: str | None
    user_id: int | None
    username: str | None
    phone: str | None
    attachments: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        return f"PlanfixMessage({self.message_id!r}, chat {self.chat_id!r})"


def _field(form, name: str, limit: int) -> str | None:
    value = form.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise Invalid(f"{name} too long")
    return value.strip()


def attachments_of(form) -> tuple[tuple[str, str], ...]:
    """`attachments[name]=…&attachments[url]=…` (repeated), or indexed
    `attachments[0][name]` — Planfix's documentation shows the first; both are accepted."""
    flat_names, flat_urls, indexed = form.getlist("attachments[name]"), form.getlist("attachments[url]"), {}
    for key in form.keys():
        match = _ATTACHMENT.match(key)
        if match and match.group(1) is not None:
            indexed.setdefault(int(match.group(1)), {})[match.group(2)] = form.get(key)
    pairs = list(zip(flat_names + [""] * (len(flat_urls) - len(flat_names)), flat_urls))
    pairs += [(v.get("name") or "", v.get("url") or "") for _, v in sorted(indexed.items())]
    for name, url in pairs:
        if not re.match(r"^https?://", url) or len(url) > 2048 or len(name) > 255:
            raise Invalid("attachment url")
    return tuple(pairs[:10])


def parse_new_message(form) -> PlanfixMessage:
    token = _field(form, "token", 256)
    message_id = _field(form, "messageId", 128)
    text = form.get("message") or ""
    if len(text) > MAX_TEXT:
        raise Invalid("message too long")
    attachments = attachments_of(form)
    raw_user = _field(form, "telegramUserId", 20)
    user_id = int(raw_user) if raw_user and raw_user.isdigit() else None
    if raw_user and user_id is None:
        raise Invalid("telegramUserId")
    raw_name = _field(form, "telegramUserName", 40)
    username = _USERNAME.match(raw_name).group(1) if raw_name and _USERNAME.match(raw_name) else None
    raw_phone = _field(form, "contactPhone", 40)
    phone = "+" + normalise_number(raw_phone) if raw_phone and normalise_number(raw_phone) else None
    chat_id = _field(form, "chatId", 128)
    channel = _field(form, "channel", 40)
    if not token or not message_id or not (text.strip() or attachments):
        raise Invalid("token, messageId and a message or an attachment are required")
    if not (chat_id or user_id or username or phone):
        raise Invalid("chatId, telegramUserId, telegramUserName or contactPhone is required")
    return PlanfixMessage(token, message_id, chat_id, text, normalise_number(channel) if channel else None,
                          user_id, username, phone, attachments)


class PlanfixWebhook:
    def __init__(self, settings: Settings, db, bell) -> None:
        self.settings = settings
        self.accounts = AccountRepository(db)
        self.contacts = ContactRepository(db)
        self.jobs = JobQueue(db, lease_seconds=settings.job_lease_seconds)
        self.control = AccountsControl(AccountHostRepository(db), SecretBox(settings.tg_accounts_key))
        self.bell = bell

    def __call__(self):
        form = request.form
        provider = form.get("providerId")
        if provider and self.settings.planfix_provider_id and provider != self.settings.planfix_provider_id:
            return jsonify({"error": "Invalid parameters"}), 400
        if form.get("cmd") != "newMessage":
            return jsonify({"error": "Invalid parameters"}), 400
        try:
            message = parse_new_message(form)
        except Invalid:
            return jsonify({"error": "Invalid parameters"}), 400
        account = self.account_for(message)
        if account is None:
            return jsonify({"error": "Invalid token"}), 401
        try:
            contact = self.recipient(account, message)
        except NotFound:
            return jsonify({"error": "Recipient not found"}), 404
        except AccountError as exc:
            return jsonify({"error": f"The Telegram account is not available now: {exc}"[:300]}), 503
        self.store(account, message, contact)
        return jsonify({"chatId": contact.chat_id, "contactId": str(contact.tg_user_id)})

    def account_for(self, message: PlanfixMessage) -> str | None:
        """The account the message goes through, if the token is its client's."""
        if message.channel:
            row = self.accounts.get(message.channel)
            rows = self.accounts.of_client(row.client_name) if row else []
            return row.number if row and any(same_hash(message.token, r.token_hash) for r in rows) else None
        owned = [r for r in self.accounts.all() if same_hash(message.token, r.token_hash)]
        return owned[0].number if len(owned) == 1 else None

    def recipient(self, account: str, message: PlanfixMessage) -> Contact:
        """By chat, then Telegram id, username, phone — known ones first, then asking
        the account (bounded)."""
        known = ((message.chat_id and self.contacts.by_chat(account, message.chat_id))
                 or (message.user_id and self.contacts.by_user(account, message.user_id))
                 or (message.username and self.contacts.by_username(account, message.username))
                 or (message.phone and self.contacts.by_phone(account, message.phone)))
        if not known:
            found = self.control.resolve(account, user_id=message.user_id, username=message.username,
                                         phone=message.phone, timeout=self.settings.planfix_resolve_timeout)
            known = Contact(**found)
        if message.chat_id and known.chat_id != message.chat_id:
            # Planfix names this chat its own way: the customer's replies must land in it.
            known = self.contacts.set_chat(account, known.tg_user_id, message.chat_id) or known
        return known

    def store(self, account: str, message: PlanfixMessage, contact: Contact) -> None:
        job_id = self.jobs.enqueue_id(
            UPDATES, "pf_deliver",
            {"account": account, "planfix_message_id": message.message_id, "chat_id": contact.chat_id,
             "peer_id": contact.tg_user_id, "text": message.text,
             "attachments": [{"name": n, "url": u} for n, u in message.attachments]},
            dedupe_key=f"pf:in:{account}:{message.message_id}",
            lane=f"pf-tg:{account}:{contact.chat_id}", priority=1)
        if job_id is not None:
            self.bell.ring(job_id)


blueprint = Blueprint("planfix_webhook", __name__)


def bind(settings: Settings, db, bell) -> PlanfixWebhook:
    return PlanfixWebhook(settings, db, bell)


@blueprint.post("/planfix/webhook")
def planfix_webhook():
    return bound()()
