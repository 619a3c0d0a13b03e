"""The `wa_webhook` job: a stored webhook body becomes the ingest service's batches.

Messages are grouped by conversation (number, customer) and handed in under that
conversation's lock, so two bodies about one customer never announce a message twice;
the ingest service stores each message once by its WhatsApp id (a re-delivered body
adds nothing). Statuses go in the same way, for the delivery marks and the failure
notices. Whatever a body says that cannot be placed — a part its parser does not
understand, a number that is not ours, an account of another provider — makes the job a
dead letter naming it (`#ERROR`, /errors, the panel), after everything else in the body
was taken in; a Retry once the setting is fixed adds only what was missing.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

from channels.base import Incoming, Ingest
from models.inbound import ConversationInfo, ConversationKey
from models.jobs import Permanent
from models.locks import LockManager
from utils.clock import utc_now
from utils.phones import display

log = logging.getLogger(__name__)

WHATSAPP = "whatsapp"


def key_of(account: str, phone: str) -> ConversationKey:
    return ConversationKey(WHATSAPP, account, phone)


class WebhookJob:
    def __init__(self, channel, ingest: Ingest, locks: LockManager) -> None:
        self.channel = channel
        self.ingest = ingest
        self.locks = locks

    def __call__(self, job) -> None:
        raw = str(job.payload.get("body") or "").encode("utf-8")
        name = job.payload.get("provider") or "cloud"
        provider = self.channel.providers.get(name)
        if provider is None:
            raise Permanent("WhatsApp body not understood",
                            f"it came for the provider {str(name)[:32]!r}, which no account uses now")
        event = provider.parse(raw, utc_now(), job.payload.get("context"))
        trouble = [f"{provider.name}: {what}" for what in event.not_understood]
        for note in event.notes:
            if note not in _NOTED:
                _NOTED.add(note)
                log.warning("WhatsApp: %s", note)
        if event.skipped:
            log.info("WhatsApp %s body: skipped %s (not the desk's)", provider.name, ", ".join(event.skipped))
        for account, state in event.states:
            if account in self.channel.accounts:
                self.channel.note_state(account, state)
            else:
                trouble.append(f"the state of {account!r}, which is none of our accounts")
        batches: "OrderedDict[tuple[str, str], dict]" = OrderedDict()
        for received in event.messages:
            problem = self._not_ours(received.account, provider.name)
            if problem:
                trouble.append(f"a message from {display(received.phone)} to {problem}")
                continue
            batch = batches.setdefault((received.account, received.phone),
                                       {"messages": [], "statuses": [], "name": None})
            batch["messages"].append(received.message)
            batch["name"] = received.name or batch["name"]
        for received in event.statuses:
            problem = self._not_ours(received.account, provider.name)
            if problem:
                trouble.append(f"a status of a message to {display(received.phone)} from {problem}")
                continue
            if received.ref:
                self.channel.confirm_sent(received)
            batches.setdefault((received.account, received.phone),
                               {"messages": [], "statuses": [], "name": None})["statuses"].append(received.status)
        for (account, phone), batch in batches.items():
            info = None
            if batch["messages"]:
                info = ConversationInfo(customer_name=batch["name"], customer_phone=display(phone))
            with self.locks.lock("wa", f"{account}:{phone}", timeout=30):
                self.ingest(Incoming(key_of(account, phone), batch["messages"], info,
                                     signal_at=job.payload.get("signal_at"),
                                     statuses=batch["statuses"]))
        for account, old, new in event.moves:
            if account in self.channel.accounts:
                with self.locks.lock("wa", f"{account}:{old}", timeout=30):
                    self.channel.follow_number(key_of(account, old), key_of(account, new), display(new))
        if trouble:
            raise Permanent("WhatsApp body not understood", "; ".join(trouble)[:2000])

    def _not_ours(self, account: str, provider: str) -> str | None:
        """Why a message or status about `account` cannot be placed, or None."""
        if account not in self.channel.accounts:
            return f"{account!r}, which is none of our accounts"
        if self.channel.accounts[account].provider != provider:
            return f"{account!r}, an account of {self.channel.accounts[account].provider}, not {provider}"
        return None


# Notes already logged by this process (a mismatch is worth one line, not one per message).
_NOTED: set[str] = set()
