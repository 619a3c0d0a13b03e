"""The one codec for inline-button data.

`callback_data` is at most 64 bytes and comes back from the client, so anybody can send
anything. Button data is `action:arg:arg~mac`: a known action, integer arguments, and a
short HMAC made with a key derived from the bot token. Garbage, forged or overlong data
decodes to None and the tap changes nothing; whether the data is still *current* (is
this chat still yours?) is for the handler to decide against the database.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

MAX_BYTES = 64
MAC_BYTES = 6  # 8 base64 characters: forging by chance is 1 in 2**48

# action -> number of integer arguments
ACTIONS: dict[str, int] = {
    "reply": 1,        # ✍ reply to a client message: crm message id
    "connect": 1,      # 🔑 connect to a task chat: crm message id
    "open": 1,         # ⚡ open a chat (its card and menu): id_i
    "list": 2,         # a list of chats: list kind number, page
    "hist": 2,         # a chat's history: id_i, page (0 = newest)
    "write": 1,        # 📩 send-message mode for a chat: id_i
    "read": 1,         # ✅ "read" status to the CRM: id_i
    "status": 1,       # ✅ toggle a task chat's status: id_i
    "unpin": 1,        # 👤 remove my pin: id_i
    "users": 1,        # /all_users page
    "menu": 0,         # ◀ back to the main menu
    "tpl": 2,          # 📋 send an approved WhatsApp template: conversation id, template number
    # the desk of SPEC §8
    "openw": 1,        # ⚡ open a chat straight into writing mode (from a notification): id
    "handover": 2,     # 🔁 the colleagues to hand a chat to: id, page
    "handto": 2,       # hand chat id to colleague tg_id
    "offer": 1,        # 🙋 take an off-shift colleague's chat: id
    "done": 1,         # 🏁 the holder marks an ordinary chat done (the customer asked for a score): id
    "aapass": 1,       # 🔁 pass on a chat assigned automatically: id
    "join": 1,         # 👀 an admin joins a chat beside its holder: id
    "leave": 1,        # 🚪 the admin leaves it: id
    "takeover": 1,     # ⚡ an admin takes the chat: id
    "shift": 1,        # on (1) / off (0) shift
    "note": 1,         # 📝 write a note on chat id
    "canned": 2,       # 💬 canned replies for chat id: id, page
    "cpick": 2,        # a canned reply drafted for a chat: reply id, chat id
    "csend": 2,        # ✅ send that draft: reply id, chat id
    "dsend": 1,        # ✅ send the reply chosen in inline mode (the message the hint answers): chat id
    "cdel": 1,         # 🗑 delete a canned reply (admins): reply id
    "cadd": 0,         # ➕ add a canned reply (admins)
}


@dataclass(frozen=True)
class Callback:
    action: str
    args: tuple[int, ...]


class CallbackCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"keepdesk-callback:" + secret.encode()).digest()

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, action: str, *args: int) -> str:
        if ACTIONS.get(action) != len(args):
            raise ValueError(f"callback {action!r} takes {ACTIONS.get(action)} arguments")
        if any(type(a) is not int for a in args):
            raise ValueError("callback arguments must be integers")
        body = ":".join([action, *map(str, args)])
        data = f"{body}~{self._mac(body)}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def decode(self, data: object) -> Callback | None:
        # Our data is always short ASCII; anything else is not ours (and some of it, lone
        # surrogates, cannot even be encoded).
        if not isinstance(data, str) or not data or not data.isascii() or len(data) > MAX_BYTES:
            return None
        body, sep, mac = data.rpartition("~")
        if not sep or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        action, *raw_args = body.split(":")
        if ACTIONS.get(action) != len(raw_args):
            return None
        try:
            args = tuple(int(a) for a in raw_args)
        except ValueError:
            return None
        return Callback(action, args)
