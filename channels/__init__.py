"""Channels: where customers write (CHANNELS.md §1). One package per channel, each behind
the contract of `channels/base.py`; this registry is the one line each adds.

A channel whose settings are absent is not built: a shop without a CRM runs without it.
"""
from __future__ import annotations

from config import Settings
from channels.base import Channel
from channels.keepingcrm import KeepingCrm
from channels.tgaccount import TgAccount
from channels.whatsapp import WhatsApp
from models.db import Database

# Every channel KeepDesk knows, in the order their routes and jobs are registered.
REGISTRY = (KeepingCrm, WhatsApp, TgAccount)


class Channels(dict):
    """The configured channels of this process, by name (conversations.channel)."""

    def of(self, conversation) -> Channel:
        channel = self.get(conversation.channel)
        if channel is None:
            raise LookupError(f"channel {conversation.channel!r} is not configured")
        return channel


def build_channels(settings: Settings, db: Database, **overrides) -> Channels:
    """The channels these settings configure. `overrides`: name → a ready instance
    (tests and the sandbox hand in clients with short retries)."""
    channels = Channels()
    for kind in REGISTRY:
        if kind.name in overrides:
            channels[kind.name] = overrides[kind.name]
        elif (kind.configured_in(settings, db) if hasattr(kind, "configured_in")
              else kind.configured(settings)):
            channels[kind.name] = kind(settings, db)
    return channels
