"""Per-role command menus (SPEC §8 "Commands per role"): Telegram's command menu shows
each person the commands of their role, set with setMyCommands and BotCommandScope:

* default scope (everyone, any private chat): /start;
* chat scope, one per manager's private chat: the manager's commands; per admin's: the
  admin's (the manager's plus theirs); a banned person's chat scope is deleted;
* chat_member scope, in the shared chat: what a manager or an admin may type there.

Each menu is a durable step (`tg_commands` job) keyed by its scope and content: set once
per change, retried when Telegram is away.
"""
from __future__ import annotations

import hashlib
import json

from telebot import types

from bot.texts import text

MANAGER_COMMANDS = ("find", "shift", "note", "open_chat")
ADMIN_COMMANDS = MANAGER_COMMANDS + ("replies", "all_users", "errors", "clean", "web_access",
                                        "auto_assign")
SHARED_CHAT_COMMANDS = ("find",)


def menu(commands: tuple[str, ...], language: str) -> list[dict]:
    return [{"command": name, "description": text(f"cmd_{name}", language)} for name in commands]


def menu_job(scope: dict, commands: list[dict] | None, language_code: str | None = None, *,
             version: str = "") -> tuple[dict, str]:
    """The payload and idempotency key of one menu (commands None: delete the menu);
    `version` names the state it follows (a role changed: set again)."""
    payload = {"scope": scope, "commands": commands, "language_code": language_code}
    digest = hashlib.sha1((json.dumps(payload, sort_keys=True, ensure_ascii=False)
                           + version).encode()).hexdigest()
    where = ":".join(str(scope.get(k, "")) for k in ("type", "chat_id", "user_id"))
    return payload, f"cmds:{where}:{language_code or ''}:{digest[:16]}"


def _scope(raw: dict):
    kind = raw["type"]
    if kind == "chat":
        return types.BotCommandScopeChat(raw["chat_id"])
    if kind == "chat_member":
        return types.BotCommandScopeChatMember(raw["chat_id"], raw["user_id"])
    return types.BotCommandScopeDefault()


class CommandMenus:
    """The `tg_commands` job: one setMyCommands (or deleteMyCommands) call."""

    def __init__(self, api) -> None:
        """`api`: bot/sender.py::TelegramApi."""
        self.api = api

    def __call__(self, job) -> None:
        payload = job.payload
        scope = _scope(payload["scope"])
        language = payload.get("language_code")
        commands = payload.get("commands")
        self.api.set_commands(None if commands is None else
                              [(c["command"], c["description"]) for c in commands], scope, language)
