"""A local emulator of the Telegram Bot API, for tests, benchmarks and the demo.

The bot talks HTTP to it exactly as it would to api.telegram.org: point
`telebot.apihelper.API_URL` / `FILE_URL` at `sandbox.api_url` / `sandbox.file_url`, and
the real pyTelegramBotAPI request code, JSON parsing and error handling are exercised.

It models what the bot's correctness depends on: per-chat message ids, edits and
deletes with Telegram's error texts, the HTML parse mode and its length limits
(counted in UTF-16 units of the visible text), inline keyboards (64-byte callback
data), uploads and downloads, webhook delivery with the secret header, long polling,
the flood limits (429 with retry_after), blocked users (403), a bot removed from a group
(403 / 400) and injected faults (for one method, optionally for one chat).

Deliberate differences from Telegram, each chosen to catch bot bugs or keep tests
hermetic:
- a bare "&" or ">" that is not part of an entity or a tag is refused in HTML (Telegram
  keeps it as text, but its documentation says "all <, > and & symbols that are not a
  part of a tag or an HTML entity must be replaced"); a bot that forgets to escape
  customer text should fail here, not in production;
- photo/document URLs are accepted without being fetched (no network in tests);
- http:// webhook URLs are allowed (Telegram wants https);
- Markdown parse modes are accepted without validation.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import math
import mimetypes
import re
import threading
import time
from collections import deque
from typing import Any, Callable

import requests
from werkzeug.wrappers import Request, Response

from sandbox._server import ServerThread

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_UPLOAD = 50 * 1024 * 1024        # bots may upload up to 50 MB ...
MAX_DOWNLOAD = 20 * 1024 * 1024      # ... but download only up to 20 MB
DELETE_WINDOW = 48 * 3600            # older messages "can't be deleted for everyone"
LONG_POLL_CAP = 50                   # Telegram never holds getUpdates longer
WEBHOOK_UNREACHABLE = 0              # deliver() status when no HTTP answer came back
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SNAPSHOT_VERSION = 1                 # the format of snapshot() / restore()

_JSON_PARAMS = frozenset({"reply_markup", "media", "reply_parameters", "entities",
                          "caption_entities", "link_preview_options", "allowed_updates",
                          "commands", "scope", "results", "button"})
_BOOL_PARAMS = frozenset({"disable_notification", "show_alert", "drop_pending_updates",
                          "disable_web_page_preview", "protect_content",
                          "allow_sending_without_reply", "is_personal"})
_INT_PARAMS = frozenset({"chat_id", "from_chat_id", "message_id", "reply_to_message_id",
                         "offset", "limit", "timeout", "max_connections", "cache_time"})
_INT_TEXT = re.compile(r"-?\d+")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_BUTTON_ACTIONS = ("callback_data", "url", "switch_inline_query",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                   "web_app", "login_url", "callback_game", "pay", "copy_text")
_API_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)/?$")
_FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
_FAULT_TEXTS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                404: "Not Found", 409: "Conflict", 502: "Bad Gateway",
                504: "Gateway Timeout"}


class ApiError(Exception):
    """An error answer of the Bot API: HTTP status = error_code, like Telegram."""

    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict:
        body = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def utf16_len(text: str) -> int:
    """Telegram measures texts and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- HTML

HTML_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic",
             "u": "underline", "ins": "underline", "s": "strikethrough",
             "strike": "strikethrough", "del": "strikethrough", "span": "spoiler",
             "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
             "blockquote": "blockquote", "tg-emoji": "custom_emoji"}
_HTML_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_SPECIAL = re.compile(r"[&<>]")
_UNQUOTED_VALUE = re.compile(r"[A-Za-z0-9.\-]*")
_SPACE = " \t\r\n\f"


class HtmlParseError(ValueError):
    """Why Telegram would refuse the text ("can't parse entities: <this>")."""


def _decode_entity(match: re.Match) -> str | None:
    name, decimal, hexadecimal = match.groups()
    if name:
        return _NAMED_ENTITIES[name]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if 0xD800 <= code <= 0xDFFF:
        raise HtmlParseError("Text contains invalid Unicode characters after decoding HTML "
                             "entities, check for unmatched surrogate code units")
    return chr(code) if 0 < code <= 0x10FFFF else None


class _HtmlParser:
    """Telegram's HTML subset -> (visible text, entities), or HtmlParseError.

    Error texts follow Telegram's, including byte offsets into the UTF-8 source.
    """

    def __init__(self, html: str):
        self.html = html
        self.pos = 0
        self.chunks: list[str] = []
        self.offset = 0                                # UTF-16 length emitted so far
        self.open: list[tuple[str, dict, int]] = []    # (tag, attributes, start offset)
        self.entities: list[dict] = []

    def parse(self) -> tuple[str, list[dict]]:
        while self.pos < len(self.html):
            special = _HTML_SPECIAL.search(self.html, self.pos)
            end = special.start() if special else len(self.html)
            self._emit(self.html[self.pos:end])
            self.pos = end
            if special is None:
                break
            if self.html[end] == "&":
                self._entity()
            elif self.html[end] == ">":
                raise HtmlParseError(
                    f'Unescaped ">" at byte offset {self._byte_offset(end)}, use &gt;')
            elif self.html.startswith("</", end):
                self._end_tag(end)
            else:
                self._start_tag(end)
        if self.open:
            raise HtmlParseError(
                f'Can\'t find end tag corresponding to start tag "{self.open[-1][0]}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.chunks), self.entities

    def _emit(self, text: str) -> None:
        if text:
            self.chunks.append(text)
            self.offset += utf16_len(text)

    def _byte_offset(self, index: int) -> int:
        return len(self.html[:index].encode("utf-8"))

    def _entity(self) -> None:
        match = _HTML_ENTITY.match(self.html, self.pos)
        char = _decode_entity(match) if match else None
        if char is None:
            raise HtmlParseError(
                f'Unescaped "&" at byte offset {self._byte_offset(self.pos)}, use &amp;')
        self._emit(char)
        self.pos = match.end()

    def _start_tag(self, begin: int) -> None:
        html, at = self.html, self._byte_offset(begin)
        i = begin + 1
        while i < len(html) and html[i] not in _SPACE and html[i] != ">":
            i += 1
        if i >= len(html):
            raise HtmlParseError(f"Unclosed start tag at byte offset {at}")
        tag = html[begin + 1:i].lower()
        if tag not in HTML_TAGS:
            raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {at}')
        attributes, self.pos = self._attributes(i, tag, at)
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            raise HtmlParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
        if tag == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise HtmlParseError("Invalid custom emoji identifier specified")
        self.open.append((tag, attributes, self.offset))

    def _attributes(self, i: int, tag: str, at: int) -> tuple[dict, int]:
        html, attributes = self.html, {}
        while True:
            i = self._skip_spaces(i)
            if i >= len(html):
                raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {at}')
            if html[i] == ">":
                return attributes, i + 1
            name_start = i
            while i < len(html) and html[i] not in _SPACE and html[i] not in "=>":
                i += 1
            name = html[name_start:i].lower()
            if not name:
                raise HtmlParseError(f'Empty attribute name in the tag "{tag}" at byte offset {at}')
            i = self._skip_spaces(i)
            if i < len(html) and html[i] == "=":
                i = self._skip_spaces(i + 1)
                if i >= len(html):
                    raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {at}')
                attributes[name], i = self._attribute_value(i, at)
            elif tag == "blockquote" and name == "expandable":
                attributes[name] = ""      # the one attribute Telegram takes without a value
            else:
                raise HtmlParseError('Expected equal sign in declaration of an attribute of '
                                     f'the tag "{tag}" at byte offset {at}')

    def _skip_spaces(self, i: int) -> int:
        while i < len(self.html) and self.html[i] in _SPACE:
            i += 1
        return i

    def _attribute_value(self, i: int, at: int) -> tuple[str, int]:
        html = self.html
        if html[i] in "\"'":
            end = html.find(html[i], i + 1)
            if end < 0:
                raise HtmlParseError(f"Unclosed start tag at byte offset {at}")
            value = _HTML_ENTITY.sub(lambda m: _decode_entity(m) or m.group(), html[i + 1:end])
            return value, end + 1
        end = _UNQUOTED_VALUE.match(html, i).end()
        if end >= len(html) or (html[end] not in _SPACE and html[end] != ">"):
            raise HtmlParseError(
                f"Unexpected end of name token at byte offset {self._byte_offset(i)}")
        return html[i:end], end

    def _end_tag(self, begin: int) -> None:
        at = self._byte_offset(begin)
        if not self.open:
            raise HtmlParseError(f"Unexpected end tag at byte offset {at}")
        end = self.html.find(">", begin + 2)
        if end < 0:
            raise HtmlParseError(f"Unclosed end tag at byte offset {at}")
        name = self.html[begin + 2:end].strip().lower()
        tag, attributes, start = self.open.pop()
        if name and name != tag:  # "</>" closes whatever tag is open, as in Telegram
            raise HtmlParseError(f'Unmatched end tag at byte offset {at}, '
                                 f'expected "</{tag}>", found "</{name}>"')
        self.pos = end + 1
        self._add_entity(tag, attributes, start)

    def _add_entity(self, tag: str, attributes: dict, start: int) -> None:
        if tag == "code" and self.open and self.open[-1][0] == "pre":
            # <pre><code class="language-x"> is how Telegram spells a pre block's language.
            language = attributes.get("class", "")
            if language.startswith("language-"):
                self.open[-1][1]["language"] = language[len("language-"):]
            return
        length = self.offset - start
        if length == 0:
            return
        entity = {"type": HTML_TAGS[tag], "offset": start, "length": length}
        if tag == "a":
            # Without href Telegram takes the link's own text as its URL; a URL it cannot
            # use (relative, javascript:, no dotted host) leaves plain text, no link.
            url = _checked_link(attributes.get("href") or self._text_since(start))
            if url is None:
                return
            entity["url"] = url
        elif tag == "pre" and attributes.get("language"):
            entity["language"] = attributes["language"]
        elif tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attributes["emoji-id"]
        self.entities.append(entity)


    def _text_since(self, offset: int) -> str:
        return "".join(self.chunks).encode("utf-16-le")[2 * offset:].decode("utf-16-le")


_LINK_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LINK_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:]*)(?::(.*))?", re.DOTALL)
_LINK_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[\w.\-!$,~*'();&+=%]+")


def _checked_link(url: str) -> str | None:
    """The URL Telegram keeps for a text link, or None where it keeps no link: http(s)
    (a URL without a scheme is taken as http) to a host with a dot, or a tg:/ton: link."""
    url = url.strip()
    if url.lower().startswith(("tg:", "ton:", "tonsite:")):
        return url
    scheme = _LINK_SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return None
    authority = re.split(r"[/?#]", url[scheme.end():] if scheme else url, maxsplit=1)[0]
    host, port = _LINK_HOST_PORT.fullmatch(authority.rpartition("@")[2]).groups()
    if port is not None and not (port.isdigit() and 0 < int(port) <= 65535):
        return None
    if not _LINK_HOST.fullmatch(host) or host == "." or ("." not in host and host[0] != "["):
        return None
    return url if scheme else "http://" + url


def parse_html(html: str) -> tuple[str, list[dict]]:
    """Visible text and entities of `html` as Telegram would derive them."""
    return _HtmlParser(html).parse()


# --------------------------------------------------------------------------- requests

def _collect_params(request: Request) -> tuple[dict, dict]:
    """Merge query string, form and JSON body; uploads become {field: (bytes, name, mime)}."""
    params: dict[str, Any] = dict(request.args.items())
    params.update(request.form.items())
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        params.update(body)
    files = {name: (storage.read(), storage.filename or name, storage.mimetype or "")
             for name, storage in request.files.items()}
    return params, files


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _normalise(params: dict) -> dict:
    """Typed values: JSON strings parsed, booleans and integers converted."""
    typed = {}
    for key, value in params.items():
        if key in _JSON_PARAMS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {key} JSON object") from None
        elif key in _BOOL_PARAMS:
            value = _as_bool(value)
        elif key in _INT_PARAMS and isinstance(value, str) and _INT_TEXT.fullmatch(value):
            value = int(value)
        typed[key] = value
    return typed


def _json_response(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    mimetype="application/json")


class _SlidingWindows:
    """Timestamps of recent sends per key, for "at most N in any W seconds"."""

    def __init__(self) -> None:
        self._hits: dict[Any, deque] = {}

    def wait_needed(self, key: Any, limit: int, window: float, now: float, count: int) -> float:
        """Seconds until `count` more sends fit under `limit` (0 = they fit now)."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        excess = len(hits) + count - limit
        if excess <= 0:
            return 0.0
        if excess > len(hits):      # more than the limit in one request: never fits
            return window
        return hits[excess - 1] + window - now

    def add(self, key: Any, now: float, count: int) -> None:
        self._hits.setdefault(key, deque()).extend([now] * count)


# --------------------------------------------------------------------------- sandbox

class TelegramSandbox:
    """The Bot API of one bot, served on 127.0.0.1, plus the users who talk to it."""

    def __init__(self, token: str = "123456:sandbox-token", *, host: str = "127.0.0.1",
                 port: int = 0, enforce_limits: bool = False, global_per_s: int = 30,
                 private_per_s: int = 1, group_per_min: int = 20, bot_id: int | None = None,
                 bot_username: str = "keepdesk_bot"):
        self.token = token
        self.host = host
        self.enforce_limits = enforce_limits
        self.global_per_s = global_per_s
        self.private_per_s = private_per_s
        self.group_per_min = group_per_min
        prefix = token.split(":", 1)[0]
        if bot_id is None:
            bot_id = int(prefix) if prefix.isdigit() else 123456
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.webhook_timeout = 10.0
        self._port = port
        self._server: ServerThread | None = None
        self._lock = threading.RLock()
        self._updates_ready = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)
        self._http = threading.local()
        # Ids that outlive reset(): a bot that stored an update_id or a file_id must
        # never see it reused for something else.
        self._last_update_id = 0
        self._serials = itertools.count(1)
        self._webhook: dict | None = None
        self._handlers: dict[str, Callable[[dict, dict], Any]] = {
            "getme": self._get_me, "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook, "getwebhookinfo": self._get_webhook_info,
            "getupdates": self._get_updates, "sendmessage": self._send_message,
            "sendphoto": self._send_photo, "senddocument": self._send_document,
            "sendmediagroup": self._send_media_group, "copymessage": self._copy_message,
            "forwardmessage": self._forward_message, "editmessagetext": self._edit_text,
            "editmessagecaption": self._edit_caption,
            "editmessagereplymarkup": self._edit_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "deletemessage": self._delete_message, "getfile": self._get_file,
            "sendchataction": lambda params, files: True,
            "setmycommands": self._set_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getmycommands": self._get_my_commands,
            "answerinlinequery": self._answer_inline_query,
        }
        # Command lists by (scope, language_code), as setMyCommands leaves them.
        self._command_lists: dict[tuple, list] = {}
        # Inline mode is a BotFather setting: off until the test turns it on.
        self.inline_mode = False
        self._clear_state()

    def _clear_state(self) -> None:
        self._calls: list[dict] = []
        self._chats: dict[int, dict[int, dict]] = {}
        self._last_message_id: dict[int, int] = {}
        self._files: dict[str, dict] = {}
        self._file_paths: dict[str, str] = {}
        self._users: dict[int, dict] = {}
        self._callback_queries: dict[str, dict] = {}
        self._answers: list[dict] = []
        self._inline_queries: dict[str, dict] = {}
        self._command_lists = {}
        self.inline_mode = False
        self._pending: list[dict] = []
        self._deliveries: list[dict] = []
        self._faults: list[dict] = []
        self._blocked: set[int] = set()
        self._removed_from: dict[int, tuple[int, str]] = {}  # group → the refusal of calls there
        self._delay = 0.0
        self._clock_offset = 0.0
        self._windows = _SlidingWindows()
        self._poll_generation = 0
        self._webhook_error: tuple[int, str] | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> TelegramSandbox:
        with self._lock:
            if self._server is None:
                self._server = ServerThread(self._wsgi, host=self.host, port=self._port)
                self._server.start()
                # Keep the port, so a stop() and start() come back on the same URL.
                self._port = self._server.port
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            self._updates_ready.notify_all()    # long polls end at once
        if server is not None:
            server.stop()

    def __enter__(self) -> TelegramSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + "/bot{0}/{1}"

    @property
    def file_url(self) -> str:
        return self.url + "/file/bot{0}/{1}"

    @property
    def bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": "KeepDesk",
                "username": self.bot_username}

    @property
    def webhook(self) -> dict | None:
        with self._lock:
            return copy.deepcopy(self._webhook)

    # ----------------------------------------------------------------- inspection

    def count_calls(self, method: str) -> int:
        """How many calls of `method` so far (cheap: no copies, for tight loops)."""
        with self._lock:
            return sum(1 for c in self._calls if c["method"].lower() == method.lower())

    def calls(self, method: str | None = None) -> list[dict]:
        with self._lock:
            found = [c for c in self._calls
                     if method is None or c["method"].lower() == method.lower()]
            return copy.deepcopy(found)

    def messages(self, chat_id: int | None = None, *, include_user: bool = False) -> list[dict]:
        """Current state of stored messages (bot's own unless include_user), oldest first."""
        with self._lock:
            chats = [chat_id] if chat_id is not None else sorted(self._chats)
            found = [record for chat in chats for record in self._chats.get(chat, {}).values()
                     if include_user or record["from_bot"]]
            return copy.deepcopy(found)

    def message(self, chat_id: int, message_id: int) -> dict | None:
        with self._lock:
            return copy.deepcopy(self._chats.get(chat_id, {}).get(message_id))

    def callback_answers(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._answers)

    def deliveries(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def pending_updates(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._pending)

    def file(self, file_id: str) -> dict | None:
        """A stored file, "content" bytes included."""
        with self._lock:
            return copy.deepcopy(self._files.get(file_id))

    def count_429(self) -> int:
        with self._lock:
            return sum(1 for c in self._calls if c["status"] == 429)

    def wait_until(self, condition: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Re-check `condition` after every API call or delivery until it is truthy.

        For bots that answer from background workers: `sb.wait_until(lambda:
        sb.messages(42))` instead of sleeping.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = condition()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._changed.wait(remaining)

    def reset(self) -> None:
        """Forget what happened and the injected faults; keep token, webhook and limits."""
        with self._lock:
            self._clear_state()

    # ----------------------------------------------------------------- test control

    def snapshot(self) -> dict:
        """What Telegram keeps between two runs of a bot, as JSON-able data: every stored
        message (bot's and people's, with keyboards, edits and deletions), the users seen,
        the files (bytes in base64) and the id counters. `restore()` puts it back in this
        sandbox or another one, so a bot upgraded in place meets its old posts (and
        presses on their buttons) and Telegram's ids go on growing. Format version 1:

            {"version": 1, "messages": [<message record>], "users": [<user>],
             "files": [<file record, "content_b64" for "content">],
             "last_update_id": int, "next_serial": int}
        """
        with self._lock:
            serial = next(self._serials)
            self._serials = itertools.count(serial)
            return copy.deepcopy({
                "version": SNAPSHOT_VERSION,
                "messages": [record for chat in sorted(self._chats)
                             for _, record in sorted(self._chats[chat].items())],
                "users": [self._users[user_id] for user_id in sorted(self._users)],
                "files": [_file_to_json(stored) for stored in self._files.values()],
                "last_update_id": self._last_update_id,
                "next_serial": serial,
            })

    def restore(self, state: dict) -> None:
        """Put a snapshot's messages, users and files back (replacing those of the same
        chat and message id). Message ids of a chat go on after the highest restored one;
        update ids and file serials never go back, so nothing a bot stored is reused."""
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown Telegram snapshot version {state.get('version')!r}")
        with self._lock:
            for saved in state["messages"]:
                record = self._blank_record(int(saved["chat_id"]), int(saved["message_id"]))
                record.update(copy.deepcopy(saved))
                self._chats.setdefault(record["chat_id"], {})[record["message_id"]] = record
                self._last_message_id[record["chat_id"]] = max(
                    self._last_message_id.get(record["chat_id"], 0), record["message_id"])
            for user in state["users"]:
                self._users[int(user["id"])] = dict(user)
            for saved in state["files"]:
                stored = _file_from_json(saved)
                self._files[stored["file_id"]] = stored
                self._file_paths[stored["file_path"]] = stored["file_id"]
            self._last_update_id = max(self._last_update_id, int(state["last_update_id"]))
            self._serials = itertools.count(max(next(self._serials), int(state["next_serial"])))

    # ----------------------------------------------------------------- control

    def set_limits(self, enabled: bool, *, global_per_s: int | None = None,
                   private_per_s: int | None = None, group_per_min: int | None = None) -> None:
        with self._lock:
            self.enforce_limits = enabled
            if global_per_s is not None:
                self.global_per_s = global_per_s
            if private_per_s is not None:
                self.private_per_s = private_per_s
            if group_per_min is not None:
                self.group_per_min = group_per_min
            self._windows = _SlidingWindows()

    def fail_next(self, method: str, status: int = 500, description: str | None = None,
                  times: int = 1, retry_after: int | None = None,
                  chat_id: int | None = None) -> None:
        """The next `times` calls of `method` ("*" = any, getUpdates included) fail; with
        `chat_id`, only calls about that chat (other chats are served meanwhile)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if status == 429
                           else _FAULT_TEXTS.get(status, "Internal Server Error"))
        with self._lock:
            self._faults.append({"method": method.lower(), "status": status, "left": times,
                                 "description": description, "retry_after": retry_after,
                                 "chat_id": chat_id})

    def block_user(self, chat_id: int) -> None:
        """Sends to this chat answer 403 until the user writes to the bot again."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock_user(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    def remove_bot_from_chat(self, chat_id: int, *, chat_exists: bool = True) -> None:
        """The bot is removed from group `chat_id`: every call about that chat answers as
        Telegram does, 403 "Forbidden: bot was kicked from the supergroup chat" — or,
        with chat_exists=False (a chat the bot cannot see at all), 400 "Bad Request: chat
        not found" — until add_bot_to_chat(chat_id)."""
        if chat_id > 0:
            raise ValueError("a bot is removed from groups; private chats block it (block_user)")
        with self._lock:
            self._removed_from[chat_id] = (
                (403, "Forbidden: bot was kicked from the supergroup chat") if chat_exists
                else (400, "Bad Request: chat not found"))

    def add_bot_to_chat(self, chat_id: int) -> None:
        with self._lock:
            self._removed_from.pop(chat_id, None)

    def set_delay(self, seconds: float) -> None:
        """Latency added to every API answer."""
        with self._lock:
            self._delay = max(0.0, seconds)

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock (message dates, the 48 h delete window) forward."""
        with self._lock:
            self._clock_offset += seconds

    def _now(self) -> int:
        return int(time.time() + self._clock_offset)

    # ----------------------------------------------------------------- user side

    def user_sends_text(self, user_id: int, text: str, *, chat_id: int | None = None,
                        username: str | None = None, first_name: str = "User",
                        language_code: str = "uk",
                        reply_to_message_id: int | None = None) -> dict:
        entities = []
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command)})
        return self._user_message(user_id, chat_id, (username, first_name, language_code),
                                  reply_to_message_id, kind="text", text=text,
                                  visible_text=text, entities=entities)

    def user_sends_photo(self, user_id: int, content: bytes = b"\x89PNG sandbox photo",
                         caption: str | None = None, *, chat_id: int | None = None,
                         username: str | None = None, first_name: str = "User",
                         language_code: str = "uk",
                         reply_to_message_id: int | None = None) -> dict:
        with self._lock:
            stored = self._keep_file({"content": content, "file_name": "photo.jpg",
                                      "mime_type": "image/jpeg", "kind": "photo"})
        return self._user_message(user_id, chat_id, (username, first_name, language_code),
                                  reply_to_message_id, kind="photo", caption=caption,
                                  visible_text=caption or "", photo=_photo_sizes(stored))

    def user_sends_document(self, user_id: int, content: bytes, file_name: str = "file.pdf",
                            mime_type: str = "application/pdf", caption: str | None = None, *,
                            chat_id: int | None = None, username: str | None = None,
                            first_name: str = "User", language_code: str = "uk",
                            reply_to_message_id: int | None = None) -> dict:
        with self._lock:
            stored = self._keep_file({"content": content, "file_name": file_name,
                                      "mime_type": mime_type, "kind": "document"})
        return self._user_message(user_id, chat_id, (username, first_name, language_code),
                                  reply_to_message_id, kind="document", caption=caption,
                                  visible_text=caption or "", document=_document(stored))

    def user_sends_album(self, user_id: int, items: list[tuple[str, bytes, str]],
                         caption: str | None = None, *, chat_id: int | None = None,
                         username: str | None = None, first_name: str = "User",
                         language_code: str = "uk") -> list[dict]:
        """An album (2-10 photos or 2-10 documents): one message per item sharing a
        media_group_id, each delivered as its own update (as Telegram does); the caption
        rides on the first. `items`: (kind "photo" | "document", content, file name)."""
        if not 2 <= len(items) <= 10:
            raise ValueError("an album has 2 to 10 items")
        group = f"{next(self._serials):016d}"
        updates = []
        for number, (kind, content, name) in enumerate(items):
            with self._lock:
                mime = "image/jpeg" if kind == "photo" else (mimetypes.guess_type(name)[0]
                                                             or "application/octet-stream")
                stored = self._keep_file({"content": content, "file_name": name,
                                          "mime_type": mime, "kind": kind})
            media = ({"photo": _photo_sizes(stored)} if kind == "photo"
                     else {"document": _document(stored)})
            text = caption if number == 0 else None
            updates.append(self._user_message(
                user_id, chat_id, (username, first_name, language_code), None, kind=kind,
                caption=text, visible_text=text or "", media_group_id=group, **media))
        return updates

    def user_presses_button(self, user_id: int, chat_id: int, message_id: int, data: str, *,
                            username: str | None = None, first_name: str = "User",
                            language_code: str = "uk") -> dict:
        """A tap on an inline button of a stored bot message; `data` is not checked
        against the keyboard, so tests can send forged or stale data."""
        with self._lock:
            record = self._live_message(chat_id, message_id)
            if record is None:
                raise ValueError(f"no message {message_id} in chat {chat_id}")
            query_id = f"cbq{next(self._serials)}"
            self._callback_queries[query_id] = {"answered": False, "user_id": user_id,
                                                "chat_id": chat_id, "message_id": message_id,
                                                "data": data}
            user = self._remember_user(user_id, username, first_name, language_code)
            update = {"callback_query": {"id": query_id, "from": user,
                                         "message": self._message_json(record),
                                         "chat_instance": str(chat_id), "data": data}}
        self.deliver(update)
        return update

    def _user_message(self, user_id: int, chat_id: int | None, profile: tuple,
                      reply_to_message_id: int | None, **content: Any) -> dict:
        chat_id = user_id if chat_id is None else chat_id
        with self._lock:
            user = self._remember_user(user_id, *profile)
            if chat_id == user_id:
                self._blocked.discard(chat_id)     # writing to the bot again unblocks it
            if (reply_to_message_id is not None
                    and self._live_message(chat_id, reply_to_message_id) is None):
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
            record = self._store(chat_id, sender=user, reply_to_message_id=reply_to_message_id,
                                 **content)
            update = {"message": self._message_json(record)}
        self.deliver(update)
        return update

    def _remember_user(self, user_id: int, username: str | None, first_name: str,
                       language_code: str) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name,
                "language_code": language_code}
        if username:
            user["username"] = username
        self._users[user_id] = user
        return dict(user)

    def deliver(self, update: dict, *, times: int = 1) -> int | None:
        """Hand `update` to the bot `times` times (Telegram re-delivers, bots must cope).

        Adds update_id when missing. With a webhook: POSTs it and returns the last HTTP
        status (WEBHOOK_UNREACHABLE = no answer). Without: queues it for getUpdates, None.
        """
        with self._lock:
            if "update_id" not in update:
                self._last_update_id += 1
                update["update_id"] = self._last_update_id
            else:   # hand-made ids: later generated ones must still be higher
                self._last_update_id = max(self._last_update_id, int(update["update_id"]))
            webhook = copy.deepcopy(self._webhook)
            if webhook is None:
                self._pending.extend(copy.deepcopy(update) for _ in range(times))
                self._updates_ready.notify_all()
                return None
        status = None
        for _ in range(times):
            status = self._post_webhook(webhook, update)
        return status

    def redeliver(self, update: dict) -> int | None:
        return self.deliver(update)

    def _post_webhook(self, webhook: dict, update: dict) -> int:
        headers = {"Content-Type": "application/json"}
        if webhook["secret_token"]:
            headers[SECRET_HEADER] = webhook["secret_token"]
        if not hasattr(self._http, "session"):
            self._http.session = requests.Session()
        error = None
        try:
            answer = self._http.session.post(webhook["url"], data=json.dumps(update).encode(),
                                             headers=headers, timeout=self.webhook_timeout)
            status = answer.status_code
            if not 200 <= status < 300:
                error = f"Wrong response from the webhook: {status} {answer.reason}"
        except requests.RequestException as exc:
            status, error = WEBHOOK_UNREACHABLE, f"Connection failed: {type(exc).__name__}"
        with self._lock:
            self._deliveries.append({"update_id": update["update_id"], "url": webhook["url"],
                                     "status": status, "error": error, "time": time.time(),
                                     "update": copy.deepcopy(update)})
            if error:
                self._webhook_error = (self._now(), error)
            self._changed.notify_all()
        return status

    # ----------------------------------------------------------------- HTTP

    def _wsgi(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        api = _API_PATH.match(request.path)
        download = _FILE_PATH.match(request.path)
        if api:
            response = self._api_call(request, api["token"], api["method"])
        elif download:
            response = self._download(download["token"], download["path"])
        else:
            response = _json_response(404, ApiError(404, "Not Found").payload())
        return response(environ, start_response)

    def _api_call(self, request: Request, token: str, method: str) -> Response:
        if self._delay:
            time.sleep(self._delay)
        started, params, files = time.time(), {}, {}
        try:
            params, files = _collect_params(request)
            params = _normalise(params)
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            with self._lock:
                self._take_fault(method, params)
                self._refuse_if_removed(params)
                status, payload = 200, {"ok": True, "result": handler(params, files)}
        except ApiError as err:
            status, payload = err.status, err.payload()
        with self._lock:
            self._calls.append({"method": method, "params": params, "files": sorted(files),
                                "time": started, "status": status,
                                "error": payload.get("description")})
            self._changed.notify_all()
        return _json_response(status, payload)

    def _download(self, token: str, path: str) -> Response:
        if token != self.token:
            return _json_response(401, ApiError(401, "Unauthorized").payload())
        with self._lock:
            stored = self._files.get(self._file_paths.get(path, ""))
        if stored is None:
            return _json_response(404, ApiError(404, "Not Found").payload())
        return Response(stored["content"],
                        mimetype=stored["mime_type"] or "application/octet-stream")

    def _take_fault(self, method: str, params: dict) -> None:
        for fault in self._faults:
            if (fault["method"] in ("*", method.lower())
                    and fault["chat_id"] in (None, params.get("chat_id"))):
                fault["left"] -= 1
                if fault["left"] <= 0:
                    self._faults.remove(fault)
                raise ApiError(fault["status"], fault["description"], fault["retry_after"])

    def _refuse_if_removed(self, params: dict) -> None:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id in self._removed_from:
            raise ApiError(*self._removed_from[chat_id])

    # ----------------------------------------------------------------- methods: updates

    # Bot commands (https://core.telegram.org/bots/api#setmycommands): at most 100 per
    # list; a command is 1-32 of a-z 0-9 _, a description 1-256 characters; each list
    # belongs to a scope (BotCommandScope*) and a language_code ("" = every language
    # without a list of its own). The exact error texts of a bad command or scope are not
    # documented; these are plausible ones.
    _SCOPES = {"default": (), "all_private_chats": (), "all_group_chats": (),
               "all_chat_administrators": (), "chat": ("chat_id",),
               "chat_administrators": ("chat_id",), "chat_member": ("chat_id", "user_id")}

    def _scope_key(self, params: dict) -> tuple:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in self._SCOPES:
            raise bad_request("can't parse BotCommandScope: unsupported type")
        fields = self._SCOPES[scope["type"]]
        values = tuple(_to_int(scope.get(name), name) for name in fields)
        if scope["type"] in ("chat_administrators", "chat_member") and values[0] > 0:
            raise bad_request("BOT_COMMAND_SCOPE_INVALID: a private chat has no members")
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("LANG_CODE_INVALID")
        return (scope["type"], *values, language)

    def _set_my_commands(self, params: dict, files: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._scope_key(params)
        if commands:
            self._command_lists[key] = [{"command": c["command"], "description": c["description"]}
                                        for c in commands]
        else:
            self._command_lists.pop(key, None)
        return True

    def _delete_my_commands(self, params: dict, files: dict) -> bool:
        self._command_lists.pop(self._scope_key(params), None)
        return True

    def _get_my_commands(self, params: dict, files: dict) -> list:
        return copy.deepcopy(self._command_lists.get(self._scope_key(params), []))

    def commands_for(self, user_id: int, chat_id: int | None = None,
                     language_code: str = "") -> list[dict]:
        """The command menu a user sees in a chat (their private chat by default), as a
        Telegram client resolves it: the narrowest scope with a list wins (chat_member,
        chat_administrators, chat, then all_* and default), the user's language before
        the list for every language."""
        chat_id = user_id if chat_id is None else chat_id
        if chat_id > 0:
            order = [("chat", chat_id), ("all_private_chats",), ("default",)]
        else:
            order = [("chat_member", chat_id, user_id), ("chat", chat_id), ("all_group_chats",),
                     ("default",)]
        with self._lock:
            for scope in order:
                for language in (language_code, ""):
                    found = self._command_lists.get((*scope, language))
                    if found:
                        return copy.deepcopy(found)
        return []

    # Inline mode (https://core.telegram.org/bots/api#inline-mode).

    def set_inline_mode(self, enabled: bool = True) -> None:
        """BotFather's /setinline: without it no inline query reaches the bot."""
        with self._lock:
            self.inline_mode = enabled

    def user_sends_inline_query(self, user_id: int, query: str, *, chat_type: str = "sender",
                                username: str | None = None, first_name: str = "User",
                                language_code: str = "uk") -> dict:
        """The user types `@bot query` (in their chat with the bot, chat_type "sender")."""
        with self._lock:
            if not self.inline_mode:
                raise ValueError("inline mode is off for this bot (BotFather /setinline)")
            query_id = f"iq{next(self._serials)}"
            user = self._remember_user(user_id, username, first_name, language_code)
            self._inline_queries[query_id] = {"user_id": user_id, "query": query[:256],
                                              "time": time.monotonic(), "answer": None}
            update = {"inline_query": {"id": query_id, "from": user, "query": query[:256],
                                       "offset": "", "chat_type": chat_type}}
        self.deliver(update)
        return update

    def inline_answer(self, query_id: str) -> dict | None:
        """What the bot answered to an inline query (None: nothing yet)."""
        with self._lock:
            found = self._inline_queries.get(query_id)
            return copy.deepcopy(found["answer"]) if found else None

    def user_chooses_inline_result(self, user_id: int, query_id: str, result_id: str, *,
                                   chat_id: int | None = None) -> dict:
        """The user taps one of the results: its input_message_content is sent into the chat
        as the user's own message "via @bot"."""
        with self._lock:
            query = self._inline_queries.get(query_id)
            answer = query and query["answer"]
            result = next((r for r in (answer or {}).get("results", []) if r.get("id") == result_id), None)
            if result is None:
                raise ValueError(f"no result {result_id!r} in the answer to {query_id}")
            content = result.get("input_message_content") or {}
            visible, entities = _render(str(content.get("message_text", "")),
                                        content.get("parse_mode"), content.get("entities"))
            user = dict(self._users[user_id])
            record = self._store(user_id if chat_id is None else chat_id, sender=user, kind="text",
                                 text=visible, visible_text=visible, entities=entities,
                                 via_bot=self.bot_user)
            update = {"message": self._message_json(record)}
        self.deliver(update)
        return update

    def _answer_inline_query(self, params: dict, files: dict) -> bool:
        query = self._inline_queries.get(str(params.get("inline_query_id", "")))
        if query is None or query["answer"] is not None or time.monotonic() - query["time"] > 10:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        results = params.get("results")
        if not isinstance(results, list):
            raise bad_request("can't parse inline query results JSON object")
        if len(results) > 50:
            raise bad_request("RESULTS_TOO_MUCH")
        seen = set()
        for result in results:
            self._check_inline_result(result, seen)
        if len(str(params.get("next_offset") or "").encode()) > 64:
            raise bad_request("NEXT_OFFSET_INVALID")
        query["answer"] = {"results": copy.deepcopy(results),
                           "cache_time": params.get("cache_time"),
                           "is_personal": params.get("is_personal", False),
                           "next_offset": params.get("next_offset")}
        return True

    @staticmethod
    def _check_inline_result(result: Any, seen: set) -> None:
        if not isinstance(result, dict) or not result.get("type"):
            raise bad_request("can't parse inline query result JSON object")
        result_id = str(result.get("id", ""))
        if not 1 <= len(result_id.encode()) <= 64:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        if result["type"] == "article":
            if not result.get("title"):
                raise bad_request("RESULT_TITLE_EMPTY")
            content = result.get("input_message_content")
            if not isinstance(content, dict):
                raise bad_request("can't parse inline query result: input_message_content is required")
            visible, _ = _render(str(content.get("message_text", "")), content.get("parse_mode"),
                                 content.get("entities"))
            if not visible.strip():
                raise bad_request("MESSAGE_EMPTY")
            if utf16_len(visible) > MAX_TEXT:
                raise bad_request("MESSAGE_TOO_LONG")
        markup = result.get("reply_markup")
        if isinstance(markup, dict) and markup.get("inline_keyboard") is not None:
            _check_inline_keyboard(markup["inline_keyboard"])

    def _get_me(self, params: dict, files: dict) -> dict:
        return {**self.bot_user, "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": self.inline_mode}

    def _set_webhook(self, params: dict, files: dict) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._delete_webhook(params, files)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token") or None
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = {"url": url, "secret_token": secret,
                         "max_connections": params.get("max_connections") or 40,
                         "allowed_updates": params.get("allowed_updates")}
        self._webhook_error = None
        self._updates_ready.notify_all()    # a running long poll now ends with 409
        return True

    def _delete_webhook(self, params: dict, files: dict) -> bool:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = None
        return True

    def _get_webhook_info(self, params: dict, files: dict) -> dict:
        info = {"url": "", "has_custom_certificate": False,
                "pending_update_count": len(self._pending)}
        if self._webhook:
            info.update(url=self._webhook["url"],
                        max_connections=self._webhook["max_connections"])
            if self._webhook["allowed_updates"] is not None:
                info["allowed_updates"] = self._webhook["allowed_updates"]
        if self._webhook_error:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _get_updates(self, params: dict, files: dict) -> list[dict]:
        self._refuse_polling_under_webhook()
        offset = _int_param(params, "offset", 0)
        limit = min(max(_int_param(params, "limit", 100), 1), 100)
        timeout = min(max(_int_param(params, "timeout", 0), 0), LONG_POLL_CAP)
        if offset > 0:      # an offset confirms, and drops, every earlier update
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        # Like Telegram, a newer getUpdates terminates the one still waiting.
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_ready.notify_all()
        deadline = time.monotonic() + timeout
        while not self._pending and self._server is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._updates_ready.wait(remaining)
            self._refuse_polling_under_webhook()
            if generation != self._poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                    "make sure that only one bot instance is running")
        return copy.deepcopy(self._pending[:limit])

    def _refuse_polling_under_webhook(self) -> None:
        if self._webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                                "active; use deleteWebhook to delete the webhook first")

    # ----------------------------------------------------------------- methods: sending

    def _send_message(self, params: dict, files: dict) -> dict:
        chat_id = _chat_id(params)
        text, visible, entities = self._formatted(params, "text", "entities", required=True)
        markup = _reply_markup(params)
        reply_to = self._reply_target(chat_id, params)
        self._admit_send(chat_id, 1)
        preview = params.get("link_preview_options") or (
            {"is_disabled": True} if params.get("disable_web_page_preview") else None)
        record = self._store(chat_id, kind="text", text=text, visible_text=visible,
                             entities=entities, parse_mode=params.get("parse_mode"),
                             reply_markup=markup, reply_to_message_id=reply_to,
                             disable_notification=params.get("disable_notification", False),
                             link_preview_options=preview)
        return self._message_json(record)

    def _send_photo(self, params: dict, files: dict) -> dict:
        return self._send_file(params, files, "photo")

    def _send_document(self, params: dict, files: dict) -> dict:
        return self._send_file(params, files, "document")

    def _send_file(self, params: dict, files: dict, kind: str) -> dict:
        chat_id = _chat_id(params)
        source = self._media_source(params.get(kind), files.get(kind), files, kind)
        caption, visible, entities = self._formatted(params, "caption", "caption_entities")
        markup = _reply_markup(params)
        reply_to = self._reply_target(chat_id, params)
        self._admit_send(chat_id, 1)
        record = self._store_file_message(chat_id, source, kind, (caption, visible, entities),
                                          params, reply_markup=markup,
                                          reply_to_message_id=reply_to)
        return self._message_json(record)

    def _send_media_group(self, params: dict, files: dict) -> list[dict]:
        chat_id = _chat_id(params)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("media group must contain from 2 to 10 items")
        if not all(isinstance(item, dict) for item in media):
            raise bad_request("can't parse media JSON object")
        kinds = {item.get("type") for item in media}
        if not kinds <= {"photo", "document"}:
            raise bad_request("the sandbox supports photo and document media groups only")
        if kinds == {"photo", "document"}:
            raise bad_request("document can't be mixed with other media types")
        # Validate every item before storing any: Telegram sends all or nothing.
        items = [(item, self._media_source(item.get("media"), None, files, item["type"]),
                  self._formatted(item, "caption", "caption_entities")) for item in media]
        reply_to = self._reply_target(chat_id, params)
        self._admit_send(chat_id, len(items))
        group_id = f"group{next(self._serials)}"
        return [self._message_json(self._store_file_message(
                    chat_id, source, item["type"], formatted,
                    {**item, "disable_notification": params.get("disable_notification", False)},
                    media_group_id=group_id, reply_to_message_id=reply_to))
                for item, source, formatted in items]

    def _store_file_message(self, chat_id: int, source: dict, kind: str, formatted: tuple,
                            params: dict, **extra: Any) -> dict:
        """Store a photo/document message; `params` gives parse_mode and disable_notification."""
        caption, visible, entities = formatted
        stored = self._keep_file(source)
        media = ({"photo": _photo_sizes(stored)} if kind == "photo"
                 else {"document": _document(stored)})
        return self._store(chat_id, kind=kind, caption=caption, visible_text=visible,
                           entities=entities, parse_mode=params.get("parse_mode"),
                           disable_notification=params.get("disable_notification", False),
                           **media, **extra)

    def _copy_message(self, params: dict, files: dict) -> dict:
        return {"message_id": self._repost(params, "copy")["message_id"]}

    def _forward_message(self, params: dict, files: dict) -> dict:
        return self._message_json(self._repost(params, "forward"))

    def _repost(self, params: dict, verb: str) -> dict:
        """Store the content of from_chat_id/message_id again in chat_id."""
        chat_id = _chat_id(params)
        source = self._live_message(_int_param(params, "from_chat_id", 0),
                                    _int_param(params, "message_id", 0))
        if source is None:
            raise bad_request(f"message to {verb} not found")
        self._admit_send(chat_id, 1)
        content = {key: copy.deepcopy(source[key]) for key in
                   ("kind", "text", "visible_text", "entities", "caption", "parse_mode",
                    "photo", "document", "reply_markup")}
        if verb == "forward":
            content["forwarded_from"] = {"chat_id": source["chat_id"], "from": source["from"],
                                         "message_id": source["message_id"]}
        return self._store(chat_id, **content,
                           disable_notification=params.get("disable_notification", False))

    def _admit_send(self, chat_id: int, count: int) -> None:
        """403 for blocked chats, 429 over the flood limits; else count the sends."""
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user" if chat_id > 0
                           else "Forbidden: bot was kicked from the supergroup chat")
        if not self.enforce_limits:
            return
        now = time.monotonic()
        per_chat = ((("chat", chat_id), self.private_per_s, 1.0) if chat_id > 0
                    else (("chat", chat_id), self.group_per_min, 60.0))
        windows = [("global", self.global_per_s, 1.0), per_chat]
        wait = max(self._windows.wait_needed(key, limit, span, now, count)
                   for key, limit, span in windows)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        for key, _, _ in windows:
            self._windows.add(key, now, count)

    # ----------------------------------------------------------------- methods: editing

    def _edit_text(self, params: dict, files: dict) -> dict:
        record = self._editable(params)
        if record["kind"] != "text":
            raise bad_request("there is no text in the message to edit")
        text, visible, entities = self._formatted(params, "text", "entities", required=True)
        return self._apply_edit(record, text=text, visible_text=visible, entities=entities,
                                parse_mode=params.get("parse_mode"),
                                reply_markup=_reply_markup(params))

    def _edit_caption(self, params: dict, files: dict) -> dict:
        record = self._editable(params)
        if record["kind"] == "text":
            raise bad_request("there is no caption in the message to edit")
        caption, visible, entities = self._formatted(params, "caption", "caption_entities")
        return self._apply_edit(record, caption=caption, visible_text=visible,
                                entities=entities, parse_mode=params.get("parse_mode"),
                                reply_markup=_reply_markup(params))

    def _edit_reply_markup(self, params: dict, files: dict) -> dict:
        return self._apply_edit(self._editable(params), reply_markup=_reply_markup(params))

    def _editable(self, params: dict) -> dict:
        if "inline_message_id" in params:
            raise bad_request("the sandbox does not support inline messages")
        record = self._live_message(_chat_id(params), _int_param(params, "message_id", 0))
        if record is None:
            raise bad_request("message to edit not found")
        if not record["from_bot"]:
            raise bad_request("message can't be edited")
        return record

    def _apply_edit(self, record: dict, **changes: Any) -> dict:
        # Telegram compares what the user would see: the visible text with its
        # entities, and the keyboard. A missing reply_markup removes the keyboard.
        compared = ("visible_text", "entities", "reply_markup")
        if all(record[key] == changes.get(key, record[key]) for key in compared):
            raise bad_request("message is not modified: specified new message content and "
                              "reply markup are exactly the same as a current content and "
                              "reply markup of the message")
        record.update(changes, edited=True, edit_date=self._now())
        return self._message_json(record)

    def _delete_message(self, params: dict, files: dict) -> bool:
        record = self._live_message(_chat_id(params), _int_param(params, "message_id", 0))
        if record is None:
            raise bad_request("message to delete not found")
        if self._now() - record["date"] > DELETE_WINDOW:
            raise bad_request("message can't be deleted for everyone")
        record["deleted"] = True
        return True

    def _answer_callback_query(self, params: dict, files: dict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        query = self._callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request("query is too old and response timeout expired "
                              "or query ID is invalid")
        query["answered"] = True
        self._answers.append({"callback_query_id": query_id, "text": params.get("text"),
                              "show_alert": params.get("show_alert", False),
                              "url": params.get("url"), "user_id": query["user_id"],
                              "chat_id": query["chat_id"], "message_id": query["message_id"],
                              "data": query["data"], "time": time.time()})
        return True

    def _get_file(self, params: dict, files: dict) -> dict:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored["file_size"] > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return {key: stored[key] for key in ("file_id", "file_unique_id", "file_size", "file_path")}

    # ----------------------------------------------------------------- helpers

    def _formatted(self, params: dict, key: str, entities_key: str,
                   required: bool = False) -> tuple[str | None, str, list]:
        """(as sent, visible text, entities) of a text or caption, validated."""
        raw = params.get(key)
        noun = "text" if key == "text" else "caption"
        if raw is None or raw == "":
            if required:
                raise bad_request("message text is empty")
            return None, "", []
        raw = str(raw)
        visible, entities = _render(raw, params.get("parse_mode"), params.get(entities_key))
        if required and not visible.strip():
            raise bad_request("message text is empty")
        if utf16_len(visible) > (MAX_TEXT if noun == "text" else MAX_CAPTION):
            raise bad_request("message is too long" if noun == "text"
                              else "message caption is too long")
        return raw, visible, entities

    def _reply_target(self, chat_id: int, params: dict) -> int | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id, lenient = reply.get("message_id"), reply.get("allow_sending_without_reply")
        else:
            message_id = params.get("reply_to_message_id")
            lenient = params.get("allow_sending_without_reply")
        if message_id is None:
            return None
        message_id = _to_int(message_id, "reply_to_message_id")
        if self._live_message(chat_id, message_id) is None:
            if lenient:
                return None
            raise bad_request("message to be replied not found")
        return message_id

    def _media_source(self, value: Any, upload: tuple | None, files: dict, kind: str) -> dict:
        """A file to send: an upload, an attach:// upload, a known file_id or a URL."""
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://"):])
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        if upload is not None:
            content, name, mime = upload
            if not content:
                raise bad_request("file must be non-empty")
            if len(content) > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            if kind == "photo":
                name, mime = "photo.jpg", "image/jpeg"
            mime = mime if mime and mime != "application/octet-stream" else (
                mimetypes.guess_type(name)[0] or "application/octet-stream")
            return {"content": content, "file_name": name, "mime_type": mime, "kind": kind}
        if not value or not isinstance(value, str):
            raise bad_request(f"there is no {kind} in the request")
        if value in self._files:
            known = self._files[value]
            if known["kind"] != kind:
                raise bad_request(f"can't use file of type {known['kind'].title()} "
                                  f"as {kind.title()}")
            return known
        if value.startswith(("http://", "https://")):
            name = value.rsplit("/", 1)[-1].split("?")[0] or kind
            return {"content": b"", "file_name": name, "source_url": value, "kind": kind,
                    "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream"}
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _keep_file(self, source: dict) -> dict:
        """Give a new file its ids and store it; a known file is returned as it is."""
        if "file_id" in source:
            return source
        serial = next(self._serials)
        suffix = mimetypes.guess_extension(source["mime_type"]) or ""
        folder = "photos" if source["kind"] == "photo" else "documents"
        stored = {**source, "file_id": f"SBX{source['kind'][:3].upper()}{serial:08d}",
                  "file_unique_id": f"SBU{serial:08d}", "file_size": len(source["content"]),
                  "file_path": f"{folder}/file_{serial}{suffix}"}
        self._files[stored["file_id"]] = stored
        self._file_paths[stored["file_path"]] = stored["file_id"]
        return stored

    def _live_message(self, chat_id: int, message_id: int) -> dict | None:
        record = self._chats.get(chat_id, {}).get(message_id)
        return None if record is None or record["deleted"] else record

    def _store(self, chat_id: int, *, sender: dict | None = None, **fields: Any) -> dict:
        # Both sides of a chat share one sequence of message ids, as in Telegram.
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        record = self._blank_record(chat_id, message_id, sender)
        record.update(fields)
        self._chats.setdefault(chat_id, {})[message_id] = record
        return record

    def _blank_record(self, chat_id: int, message_id: int, sender: dict | None = None) -> dict:
        return {"chat_id": chat_id, "message_id": message_id, "date": self._now(),
                "from_bot": sender is None, "from": sender or self.bot_user,
                "kind": "text", "text": None, "caption": None, "visible_text": "",
                "entities": [], "parse_mode": None, "reply_markup": None,
                "disable_notification": False, "reply_to_message_id": None,
                "link_preview_options": None, "photo": None, "document": None,
                "media_group_id": None, "forwarded_from": None, "via_bot": None,
                "edited": False, "edit_date": None, "deleted": False}

    def _message_json(self, record: dict, nested: bool = True) -> dict:
        """The Message object Telegram would return for a stored message."""
        message = {"message_id": record["message_id"], "date": record["date"],
                   "chat": self._chat_json(record["chat_id"]), "from": dict(record["from"])}
        prefix = "" if record["kind"] == "text" else "caption_"
        if record["kind"] == "text":
            message["text"] = record["visible_text"]
        elif record["visible_text"]:
            message["caption"] = record["visible_text"]
        if record["entities"]:
            message[prefix + "entities"] = copy.deepcopy(record["entities"])
        for key in ("photo", "document", "media_group_id", "edit_date", "link_preview_options",
                    "via_bot"):
            if record[key]:
                message[key] = copy.deepcopy(record[key])
        markup = record["reply_markup"]
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = copy.deepcopy(markup)   # only inline ones come back
        if record["forwarded_from"]:
            message["forward_origin"] = {"type": "user", "date": record["date"],
                                         "sender_user": dict(record["forwarded_from"]["from"])}
        target = self._chats[record["chat_id"]].get(record["reply_to_message_id"])
        if nested and target is not None:
            message["reply_to_message"] = self._message_json(target, nested=False)
        return message

    def _chat_json(self, chat_id: int) -> dict:
        if chat_id < 0:
            return {"id": chat_id, "type": "supergroup", "title": f"Sandbox group {chat_id}"}
        user = self._users.get(chat_id, {})
        chat = {"id": chat_id, "type": "private", "first_name": user.get("first_name", "User")}
        if user.get("username"):
            chat["username"] = user["username"]
        return chat


def _render(raw: str, parse_mode: Any, entities: Any) -> tuple[str, list]:
    mode = str(parse_mode or "").lower()
    if not mode:
        return raw, entities if isinstance(entities, list) else []
    if mode == "html":
        try:
            return parse_html(raw)
        except HtmlParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
    if mode in ("markdown", "markdownv2"):
        return raw, []
    raise bad_request(f"unsupported parse_mode {parse_mode}")


def _chat_id(params: dict) -> int:
    chat_id = params.get("chat_id")
    if chat_id is None or chat_id == "":
        raise bad_request("chat_id is empty")
    if isinstance(chat_id, bool) or not isinstance(chat_id, int):
        raise bad_request("chat not found")     # @usernames are not modelled
    return chat_id


def _int_param(params: dict, key: str, default: int) -> int:
    return _to_int(params.get(key, default), key)


def _to_int(value: Any, name: str) -> int:
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be a number")
    return value


def _reply_markup(params: dict) -> dict | None:
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is not None:
        _check_inline_keyboard(rows)
    return markup


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('can\'t parse inline keyboard button: Field "inline_keyboard" '
                          'must be of type Array of Array')
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text must be non-empty")
        if not any(action in button for action in _BUTTON_ACTIONS):
            raise bad_request("can't parse inline keyboard button: Text buttons are "
                              "unallowed in the inline keyboard")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise bad_request("BUTTON_DATA_INVALID")
        copied = button.get("copy_text")
        if copied is not None and (not isinstance(copied, dict)
                                   or not 1 <= len(str(copied.get("text") or "")) <= 256):
            raise bad_request("can't parse inline keyboard button: copy_text must have text of "
                              "1-256 characters")


def _file_to_json(stored: dict) -> dict:
    saved = {key: value for key, value in stored.items() if key != "content"}
    saved["content_b64"] = base64.b64encode(stored["content"]).decode("ascii")
    return saved


def _file_from_json(saved: dict) -> dict:
    stored = {key: value for key, value in saved.items() if key != "content_b64"}
    stored["content"] = base64.b64decode(saved["content_b64"])
    return stored


def _photo_sizes(stored: dict) -> list[dict]:
    # One size is enough for the bot; real dimensions would need an image decoder.
    return [{"file_id": stored["file_id"], "file_unique_id": stored["file_unique_id"],
             "file_size": stored["file_size"], "width": 800, "height": 600}]


def _document(stored: dict) -> dict:
    return {key: stored[key] for key in
            ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")}
