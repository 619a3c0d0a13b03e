"""The `wa_webhook` job: a stored webhook body becomes the ingest service's batches.

Messages are grouped by conversation (number, customer) and handed in under that
conversation's lock, so two bodies about one customer never announce a message twice;
the ingest service stores each message once by its WhatsApp id (a re-delivered body
adds nothing). Statuses go in the same way, for the delivery marks and the failure
notices. Bodies about numbers that are not ours are ignored (logged).
"""
from __future__ import annotations

import logging
from collections import OrderedDict

from channels.base import Incoming, Ingest
from models.inbound import ConversationInfo, ConversationKey
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
        provider = self.channel.providers.get(job.payload.get("provider") or "cloud")
        if provider is None:
            log.warning("WhatsApp body of an unknown provider ignored")
            return
        event = provider.parse(raw, utc_now(), job.payload.get("context"))
        for ignored in event.ignored:
            log.warning("WhatsApp %s body not understood (%s): kept in the job, nothing changed",
                        provider.name, ignored)
        for account, state in event.states:
            if account in self.channel.accounts:
                self.channel.note_state(account, state)
        for received in event.statuses:
            if received.ref and received.account in self.channel.accounts:
                self.channel.confirm_sent(received)
        batches: "OrderedDict[tuple[str, str], dict]" = OrderedDict()
        for received in event.messages:
            if received.account not in self.channel.accounts:
                log.warning("WhatsApp message for a number that is not ours (%s) ignored", received.account)
                continue
            if self.channel.accounts[received.account].provider != provider.name:
                log.warning("WhatsApp %s body about an account of another provider ignored", provider.name)
                continue
            batch = batches.setdefault((received.account, received.phone),
                                       {"messages": [], "statuses": [], "name": None})
            batch["messages"].append(received.message)
            batch["name"] = received.name or batch["name"]
        for received in event.statuses:
            if received.account not in self.channel.accounts:
                continue
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
