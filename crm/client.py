"""The KeepingCRM "debates" chat API client (SPEC §5).

One `CrmClient` per process, shared by every thread. It logs in with the signed
`/apilogin` call, keeps the token until shortly before it expires, logs in once more
when the CRM refuses a token, retries what is safe to retry, and turns the CRM's loosely
typed JSON into frozen dataclasses of bounded values ("the border" below: whatever the
CRM sends fits where KeepDesk keeps it).

Failures are `CrmError`s whose `transient` flag tells the caller whether waiting and
trying again can help. No error message and no log line of this module carries the
token, the api key or the login sign. (urllib3's own DEBUG lines do show request URLs,
and the API wants the token in the query string: keep urllib3 above DEBUG in production.)
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

log = logging.getLogger(__name__)

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# A 429 may ask for a pause; honour it, but never let one answer park a worker for long.
MAX_RETRY_AFTER_S = 30.0

# How much of the CRM's own error text goes into an exception message.
MAX_ERROR_TEXT = 200

# Failures of the connection itself, as opposed to an answer we did not like.
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout,
                  requests.exceptions.ChunkedEncodingError)

# A JSON answer with retval != 0 whose error mentions one of these is a refused token.
AUTH_WORDS = ("token", "auth")

MESSAGE_LIST_KEYS = ("messages", "items", "data")
CHAT_LIST_KEYS = ("chats", "items")

_TOKEN_IN_URL = re.compile(r"(token=)[^&\s'\")]+", re.IGNORECASE)


# ---------------------------------------------------------------------- results

@dataclass(frozen=True)
class CrmChat:
    id_i: int
    email: str | None
    product: str | None
    last_date: datetime | None
    cnt_msg: int
    cnt_new: int


@dataclass(frozen=True)
class CrmMessage:
    id: int
    id_i: int
    text: str  # as the CRM stores it (new lines are "<br>"); only an absurd length is cut
    from_client: bool
    from_shop: bool
    deleted: bool
    date_written: datetime | None
    date_seen: datetime | None
    is_file: bool
    is_img: bool
    filename: str | None
    url: str | None
    preview: str | None


@dataclass(frozen=True)
class CrmOrder:
    """The purchase behind a chat, as the CRM's invoice shows it (see `parse_order`)."""
    id_i: int
    product: str | None
    quantity: int | None
    total: str | None          # a decimal as text ("1250.00"): money is never a float here
    currency: str | None
    status: str | None
    paid: bool | None
    delivery_service: str | None
    delivery_address: str | None
    tracking: str | None
    delivery_status: str | None


@dataclass(frozen=True)
class UploadedFile:
    newid: str
    name: str
    type: str


# ---------------------------------------------------------------------- errors

class CrmError(Exception):
    """Any failure of a CRM call; `transient` says whether a later retry may succeed."""

    transient = False

    def __init__(self, message: str, *, call: str | None = None, id_i: int | None = None):
        super().__init__(message)
        self.call = call
        self.id_i = id_i


class CrmUnavailable(CrmError):
    """Network error, timeout, 5xx or 429, after the client's own retries."""

    transient = True


class CrmAuthError(CrmError):
    """Login refused, or a token still refused right after a fresh login."""

    transient = False


class CrmRejected(CrmError):
    """The CRM understood the call and refused it, e.g. a message too long.

    A 4xx (other than 401/403), or a 2xx whose `retval` is not 0.
    """

    transient = False

    def __init__(self, message: str, *, call: str | None = None, id_i: int | None = None,
                 status: int, error_text: str = "", max_length: int | None = None):
        super().__init__(message, call=call, id_i=id_i)
        self.status = status
        self.error_text = error_text
        self.max_length = max_length


class CrmBadAnswer(CrmError):
    """An answer that is not JSON or not shaped as the API promises.

    Transient: in practice this is a proxy's error page or a half-deployed CRM.
    """

    transient = True


# ---------------------------------------------------------------------- lenient parsing

def login_sign(api_key: str, timestamp: float) -> str:
    return hashlib.sha256((api_key + str(round(timestamp))).encode()).hexdigest()


def parse_crm_date(value: Any) -> datetime | None:
    """A CRM date ("YYYY-MM-DD HH:MM:SS", local time) as a naive datetime, or None — also
    for a date outside what a DATETIME column holds (years 1000 to 9999)."""
    parsed = _parse_date(value)
    return parsed if parsed is not None and parsed.year >= 1000 else None


def _parse_date(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    # MySQL's zero date means "never" (e.g. a message not seen yet).
    if not text or text.startswith("0000-00-00"):
        return None
    try:
        return datetime.strptime(text, DATE_FORMAT)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
        # Everything else here is naive local time; keep one convention.
        return parsed.astimezone().replace(tzinfo=None) if parsed.tzinfo else parsed
    except (ValueError, OverflowError):  # OverflowError: "9999-12-31T23:59:59-05:00"
        log.debug("unparseable CRM date %r", text)
        return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_bool(value: Any) -> bool:
    """0/1, "0"/"1", true/false, "true"/"false"; anything unknown is False."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on"):
        return True
    number = _as_int(value)
    return bool(number)


def _as_text(value: Any) -> str | None:
    """Optional metadata: None and "" both mean absent."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


# ---------------------------------------------------------------------- the border
# What the CRM sends becomes values that fit where KeepDesk keeps them (schema.sql): a
# record too long or malformed in one field loses that field's excess, visibly marked,
# and nothing else — it never stops the sync of its conversation.

ID_RANGE = (-2**63, 2**63 - 1)   # ids are BIGINT columns; outside it, the entry is malformed
COUNT_MAX = 2**31 - 1            # cnt_msg, cnt_new: INT columns
EMAIL_MAX = 255                  # chats.email VARCHAR(255)
PRODUCT_MAX = 1024               # chats.product VARCHAR(1024)
FILENAME_MAX = 512               # messages.filename VARCHAR(512)
URL_MAX_BYTES = 65_535           # messages.url, preview: TEXT; a longer URL is dropped, not cut
TEXT_MAX = 60_000                # messages.text is MEDIUMTEXT; past this it is not a chat message
CUT = "…"
TEXT_CUT = "… (truncated)"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")   # JSON "\ud83d" alone: not encodable as UTF-8
_CONTROL = re.compile("[\x00-\x1f\x7f]+")         # new lines, tabs … in a one-line field
_EXTENSION = re.compile(r"\.[^.\s/\\]{1,16}$")


def _as_id(value: Any) -> int | None:
    number = _as_int(value)
    return number if number is not None and ID_RANGE[0] <= number <= ID_RANGE[1] else None


def _as_count(value: Any) -> int:
    return min(max(_as_int(value) or 0, 0), COUNT_MAX)


def _clean(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)


def _cut(text: str, limit: int, marker: str = CUT) -> str:
    return text if len(text) <= limit else text[:limit - len(marker)] + marker


def _one_line(value: Any) -> str | None:
    """An e-mail, a product title, a file name: one line of text, or None."""
    text = _as_text(value)
    return None if text is None else _CONTROL.sub(" ", _clean(text)).strip() or None


def _bounded(value: Any, limit: int) -> str | None:
    text = _one_line(value)
    return None if text is None else _cut(text, limit)


def _file_name(value: Any) -> str | None:
    """A file name within its column, keeping its extension: "Договір поставки….pdf"."""
    name = _one_line(value)
    if name is None or len(name) <= FILENAME_MAX:
        return name
    match = _EXTENSION.search(name)
    extension = match.group() if match else ""
    return _cut(name[:len(name) - len(extension)], FILENAME_MAX - len(extension)) + extension


def _url(value: Any, message_id: int) -> str | None:
    """A URL kept whole, or dropped: a URL cut short is a broken link."""
    url = _as_text(value)
    if url is None:
        return None
    url = _clean(url).strip()
    if len(url.encode("utf-8")) > URL_MAX_BYTES:
        log.info("CRM message %s: a URL of %s characters dropped", message_id, len(url))
        return None
    return url or None


def _message_text(value: Any) -> str:
    text = "" if value is None else _clean(value if isinstance(value, str) else str(value))
    return _cut(text, TEXT_MAX, TEXT_CUT)


def parse_chat(entry: Any) -> CrmChat | None:
    id_i = _as_id(entry.get("id_i")) if isinstance(entry, dict) else None
    if id_i is None:
        return None
    return CrmChat(
        id_i=id_i,
        email=_bounded(entry.get("email"), EMAIL_MAX),
        product=_bounded(entry.get("product"), PRODUCT_MAX),
        last_date=parse_crm_date(entry.get("last_date")),
        cnt_msg=_as_count(entry.get("cnt_msg")),
        cnt_new=_as_count(entry.get("cnt_new")),
    )


def parse_message(entry: Any, id_i: int) -> CrmMessage | None:
    """One message; `id_i` is the chat asked for, used when the entry does not say."""
    message_id = _as_id(entry.get("id")) if isinstance(entry, dict) else None
    if message_id is None:
        return None
    from_shop = _as_bool(entry.get("seller"))
    # Some answers carry only one of the two flags; they are each other's opposite.
    from_client = _as_bool(entry["buyer"]) if "buyer" in entry else not from_shop
    return CrmMessage(
        id=message_id,
        id_i=_as_id(entry.get("id_i")) or id_i,
        text=_message_text(entry.get("message")),
        from_client=from_client,
        from_shop=from_shop,
        deleted=_as_bool(entry.get("deleted")),
        date_written=parse_crm_date(entry.get("date_written")),
        date_seen=parse_crm_date(entry.get("date_seen")),
        is_file=_as_bool(entry.get("is_file")),
        is_img=_as_bool(entry.get("is_img")),
        filename=_file_name(entry.get("filename")),
        url=_url(entry.get("url"), message_id),
        preview=_url(entry.get("preview"), message_id),
    )


ORDER_TEXT_MAX = 200             # one field of an order as the card shows it
_DECIMAL = re.compile(r"^-?\d{1,12}(?:[.,]\d{1,4})?$")


def _decimal(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip().replace(" ", "").replace("\u00a0", "")
    return text.replace(",", ".") if _DECIMAL.match(text) else None


def parse_order(body: Any, id_i: int) -> CrmOrder | None:
    """An invoice of the CRM's purchases API. Its public documentation does not describe
    it; the answer is read leniently: the fields at the top level or under "invoice" /
    "data", the delivery as an object under "delivery" or as flat "delivery_*" fields,
    the sum as "sum" or "total". Every value is bounded; nothing usable → None."""
    if isinstance(body, dict):
        for key in ("invoice", "data", "order"):
            if isinstance(body.get(key), dict):
                body = body[key]
                break
    if not isinstance(body, dict):
        return None
    delivery = body.get("delivery") if isinstance(body.get("delivery"), dict) else {}

    def pick(source: dict, *names: str) -> str | None:
        for name in names:
            raw = source.get(name)
            if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
                continue   # a list or an object where text belongs: not shown
            value = _bounded(raw, ORDER_TEXT_MAX)
            if value is not None:
                return value
        return None

    quantity = _as_int(body.get("qty", body.get("quantity")))
    order = CrmOrder(
        id_i=_as_id(body.get("id_i")) or id_i,
        product=pick(body, "product", "title", "name"),
        quantity=quantity if quantity is not None and 0 < quantity < 1_000_000 else None,
        total=_decimal(body.get("sum", body.get("total"))),
        currency=pick(body, "currency")[:8] if pick(body, "currency") else None,
        status=pick(body, "status_name", "status"),
        paid=_as_bool(body["paid"]) if "paid" in body else None,
        delivery_service=pick(delivery, "service", "method") or pick(body, "delivery_service"),
        delivery_address=(", ".join(filter(None, (pick(delivery, "city"),
                                                  pick(delivery, "branch", "address"))))[:ORDER_TEXT_MAX]
                          or pick(body, "delivery_address") or None),
        tracking=pick(delivery, "ttn", "tracking") or pick(body, "ttn", "tracking"),
        delivery_status=pick(delivery, "status") or pick(body, "delivery_status"),
    )
    useful = (order.product, order.total, order.status, order.delivery_service, order.tracking)
    return order if any(v is not None for v in useful) else None


def _parsed_list(entries: list[Any], parse: Callable[[Any], Any], what: str, where: str) -> list:
    """Parse every entry; one malformed entry must not hide the good ones."""
    parsed = []
    for entry in entries:
        item = parse(entry)
        if item is None:
            log.warning("CRM %s: skipped a malformed %s entry", where, what)
        else:
            parsed.append(item)
    return parsed


def _first_list(body: Any, keys: Sequence[str]) -> list | None:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in keys:
            if isinstance(body.get(key), list):
                return body[key]
    return None


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error", "message", "msg"):
            if body.get(key):
                return str(body[key])[:MAX_ERROR_TEXT]
    return ""


def _max_length(body: Any) -> int | None:
    """The limit a "too long" refusal names, e.g. {"error": "message too long", "max": 4000}."""
    if not isinstance(body, dict):
        return None
    for key in ("max", "max_length", "maxlength"):
        if _as_int(body.get(key)) is not None:
            return _as_int(body[key])
    return None


def _retval(body: Any) -> int | None:
    return _as_int(body.get("retval")) if isinstance(body, dict) else None


def _is_auth_failure(status: int, body: Any) -> bool:
    if status in (401, 403):
        return True
    retval = _retval(body)
    return (retval not in (None, 0)
            and any(word in _error_text(body).lower() for word in AUTH_WORDS))


def _is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def _never_sent(error: Exception) -> bool:
    """True when the request surely never reached the CRM (no connection was made).

    Only then may a non-idempotent call be repeated. A requests.ConnectionError alone is
    not enough: requests also raises it for a connection dropped after the request went
    out, and for a read timeout while downloading the answer body.
    """
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    reason = error.args[0]
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)  # refused, unreachable, DNS failure


def _never_processed(response: requests.Response | None, error: Exception | None) -> bool:
    """True when a failed attempt surely left the CRM untouched."""
    if error is not None:
        return _never_sent(error)
    # A rate limit refuses before doing anything; a 5xx may come after the work was done.
    return response is not None and response.status_code == 429


def _retry_after(response: requests.Response | None) -> float:
    if response is None or response.status_code != 429:
        return 0.0
    try:
        return min(float(response.headers.get("Retry-After", "")), MAX_RETRY_AFTER_S)
    except ValueError:
        return 0.0


# ---------------------------------------------------------------------- the client

class CrmClient:
    def __init__(
        self,
        base_url: str,
        seller_id: int | str,
        api_key: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        token_ttl: float = 3600.0,
        refresh_margin: float = 120.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        # Settings hold the seller id as text; the CRM's JSON wants a number.
        self.seller_id = int(seller_id) if str(seller_id).strip().isdigit() else seller_id
        self._api_key = api_key
        self._own_session = session is None
        self._session = session or requests.Session()
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.token_ttl = token_ttl
        self.refresh_margin = refresh_margin
        self._clock = clock
        self._sleep = sleep

        # One lock for the token: concurrent calls share one login instead of racing.
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._last_sign = ""
        # Tokens recently issued, hidden in error texts even after they were replaced.
        # A tuple, replaced whole, so readers outside the lock never see it change.
        self._recent_tokens: tuple[str, ...] = ()
        self._calls_lock = threading.Lock()
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> CrmClient:
        return cls(settings.keeping_api_url, settings.keeping_seller_id,
                   settings.keeping_api_key, **options)

    def __repr__(self) -> str:
        return f"CrmClient({self.base_url!r}, seller_id={self.seller_id!r})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    # ------------------------------------------------------------------ token

    def login(self) -> str:
        """Log in now (whatever the cached token) and return the new token."""
        with self._token_lock:
            return self._login_locked()

    def token(self) -> str:
        """A valid token (logging in when there is none or it is about to expire): the
        cheapest "is the CRM there and does it let us in?"."""
        return self._valid_token("login", None)

    def _valid_token(self, call: str, id_i: int | None) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._token_expires - self.refresh_margin:
                # Named after the call that needed it, so a failure says what was blocked.
                self._login_locked(f"login for {call}", id_i)
            return self._token

    def _drop_token(self, refused: str) -> None:
        # Another thread may already have replaced the refused token; keep the new one.
        with self._token_lock:
            if self._token == refused:
                self._token = None

    def _login_locked(self, call: str = "login", id_i: int | None = None) -> str:
        now = self._clock()
        self._last_sign = login_sign(self._api_key, now)
        # The sign covers round(T); sending the same rounded number keeps both sides equal
        # whether the CRM rounds or stringifies what it receives.
        payload = {"seller_id": self.seller_id, "timestamp": round(now), "sign": self._last_sign}
        response = self._http(call, id_i, "POST", self.base_url + "/apilogin",
                              safe_to_repeat=True, json=payload)
        body = _json_or_none(response)
        self._token = self._token_from(response.status_code, body, call, id_i)
        self._recent_tokens = (*self._recent_tokens[-3:], self._token)
        self._token_expires = self._expiry_from(body.get("valid_thru"), now)
        log.info("CRM login ok; token valid for %.0f s", self._token_expires - now)
        return self._token

    def _token_from(self, status: int, body: Any, call: str, id_i: int | None) -> str:
        where = self._where(call, id_i)
        if 200 <= status < 300 and not isinstance(body, dict):
            raise CrmBadAnswer(f"CRM {where}: HTTP {status} answer is not a JSON object",
                               call=call, id_i=id_i)
        if 200 <= status < 300 and (_retval(body) or 0) == 0:
            token = body.get("token")
            if isinstance(token, str) and token:
                return token
            raise CrmBadAnswer(f"CRM {where}: answer has no token", call=call, id_i=id_i)
        if 200 <= status < 500:
            detail = self._safe(_error_text(body)) or f"retval {_retval(body)}"
            raise CrmAuthError(f"CRM {where} refused (HTTP {status}): {detail}",
                               call=call, id_i=id_i)
        raise CrmBadAnswer(f"CRM {where}: unexpected HTTP {status}", call=call, id_i=id_i)

    def _expiry_from(self, valid_thru: Any, now: float) -> float:
        expires = parse_crm_date(valid_thru)
        # valid_thru is the CRM's local wall-clock time, read as ours (as the emulator does).
        expires_at = expires.timestamp() if expires else None
        if expires_at is not None and expires_at > now + self.refresh_margin:
            return expires_at
        if expires_at is not None:
            # Already (nearly) past: the CRM's clock or time zone differs from ours.
            # Trusting it would mean a login before every call; a 401 corrects us instead.
            log.warning("CRM valid_thru %r is not in the future here; assuming %.0f s",
                        valid_thru, self.token_ttl)
        return now + self.token_ttl

    # ------------------------------------------------------------------ API calls

    def chats(self, page: int = 1, pagesize: int = 50,
              filter_new: bool = False) -> tuple[list[CrmChat], int]:
        """One page of chats, newest first as the CRM gives them, and the page count."""
        params = {"page": page, "pagesize": pagesize, "filter_new": int(bool(filter_new))}
        body = self._call("chats", "GET", "/debates/v2/chats", params=params)
        entries = _first_list(body if isinstance(body, dict) else None, CHAT_LIST_KEYS)
        if entries is None:
            raise CrmBadAnswer("CRM chats: answer has no chats/items list", call="chats")
        chats = _parsed_list(entries, parse_chat, "chat", "chats")
        pages = _as_int(body.get("cnt_pages"))
        # Without a page count, treat this page as the last one so no loop runs away.
        return chats, pages if pages is not None else page

    def find_chat(self, id_i: int, *, max_pages: int = 3, pagesize: int = 100) -> CrmChat | None:
        """One chat's metadata, looked up among the most recently active chats.

        The API has no "one chat" call; a chat that just got a message is at the top of
        the newest-first list, so a few pages are enough and the search stops early.
        """
        page, pages = 1, 1
        while page <= min(pages, max_pages):
            chats, pages = self.chats(page=page, pagesize=pagesize)
            for chat in chats:
                if chat.id_i == id_i:
                    return chat
            page += 1
        return None

    def messages(self, id_i: int, count: int = 50, id_from: int | None = None,
                 newer: bool = False) -> list[CrmMessage]:
        """Messages of chat id_i, sorted by id ascending."""
        params: dict[str, Any] = {"id_i": id_i, "count": count, "hidden": 0}
        if id_from is not None:
            params["id_from"] = id_from
        if newer:
            params["newer"] = 1
        body = self._call("messages", "GET", "/debates/v2", id_i=id_i, params=params)
        entries = _first_list(body, MESSAGE_LIST_KEYS)
        if entries is None:
            raise CrmBadAnswer(f"CRM messages id_i={id_i}: answer has no message list",
                               call="messages", id_i=id_i)
        found = _parsed_list(entries, lambda entry: parse_message(entry, id_i), "message",
                             f"messages id_i={id_i}")
        return sorted(found, key=lambda message: message.id)

    def order(self, id_i: int) -> CrmOrder | None:
        """The purchase (invoice) behind chat id_i; None when the CRM has none for it."""
        try:
            body = self._call("order", "GET", "/purchases/v2/inv_detail", id_i=id_i,
                              params={"id_i": id_i})
        except CrmRejected as exc:
            if exc.status == 404:
                return None
            raise
        return parse_order(body, id_i)

    def send(self, id_i: int, text: str, files: Iterable[UploadedFile] = ()) -> None:
        """Post a shop message (text and/or uploaded files) to chat id_i."""
        payload = {"message": text,
                   "files": [{"newid": f.newid, "name": f.name, "type": f.type} for f in files]}
        # Not idempotent: a repeated send posts the customer a duplicate. So it is only
        # repeated when the request surely never left (connection refused, connect
        # timeout); never after a read timeout or a 5xx, which the CRM may have processed.
        self._call("send", "POST", "/debates/v2/", id_i=id_i, params={"id_i": id_i},
                   json=payload, safe_to_repeat=False, want_json=False)

    def upload(self, files: Sequence[tuple[str, bytes, str]],
               lang: str = "uk") -> list[UploadedFile]:
        """Upload (name, data, mime type) files; returns what `send` attaches."""
        if not files:
            return []
        parts = [("files[]", (name, data, mime)) for name, data, mime in files]
        # An upload only stores a preview; repeating it leaves at worst an unused file.
        body = self._call("upload", "POST", "/debates/v2/upload-preview",
                          params={"lang": lang}, files=parts)
        entries = _first_list(body, ("files", "items", "data"))
        if entries is None or len(entries) != len(files):
            raise CrmBadAnswer(f"CRM upload: expected {len(files)} files in the answer",
                               call="upload")
        return [self._uploaded(entry, sent) for entry, sent in zip(entries, files)]

    def seen(self, id_i: int) -> None:
        """Mark the customer's messages in chat id_i as read."""
        self._call("seen", "POST", "/debates/v2/seen", id_i=id_i, params={"id_i": id_i},
                   want_json=False)

    @staticmethod
    def _uploaded(entry: Any, sent: tuple[str, bytes, str]) -> UploadedFile:
        newid = entry.get("newid") if isinstance(entry, dict) else None
        if newid is None or newid == "" or isinstance(newid, bool):
            # Unlike a list of chats, a file without its id cannot be skipped: the
            # caller would send a message missing an attachment it thinks is there.
            raise CrmBadAnswer("CRM upload: a file has no newid", call="upload")
        name, _, mime = sent
        return UploadedFile(newid=str(newid), name=_as_text(entry.get("name")) or name,
                            type=_as_text(entry.get("type")) or mime)

    # ------------------------------------------------------------------ plumbing

    def _call(self, call: str, method: str, path: str, *, id_i: int | None = None,
              params: dict[str, Any] | None = None, safe_to_repeat: bool = True,
              want_json: bool = True, **request_args: Any) -> Any:
        """One authenticated call: a fresh login and one repeat if the token is refused."""
        url = self.base_url + path
        for _ in range(2):
            token = self._valid_token(call, id_i)
            query = {"token": token, **(params or {})}
            response = self._http(call, id_i, method, url, params=query,
                                  safe_to_repeat=safe_to_repeat, **request_args)
            body = _json_or_none(response)
            if not _is_auth_failure(response.status_code, body):
                return self._checked(call, id_i, response, body, want_json)
            log.info("CRM %s: token refused (HTTP %s); logging in again",
                     self._where(call, id_i), response.status_code)
            self._drop_token(token)
        raise CrmAuthError(f"CRM {self._where(call, id_i)}: token refused even after a "
                           "fresh login", call=call, id_i=id_i)

    def _checked(self, call: str, id_i: int | None, response: requests.Response, body: Any,
                 want_json: bool) -> Any:
        """The answer's JSON, or the CrmError its status and body stand for."""
        status = response.status_code
        where = self._where(call, id_i)
        if 400 <= status < 500 or (200 <= status < 300 and _retval(body) not in (None, 0)):
            text = self._safe(_error_text(body))
            raise CrmRejected(f"CRM {where} refused (HTTP {status}): {text or 'no reason given'}",
                              call=call, id_i=id_i, status=status, error_text=text,
                              max_length=_max_length(body))
        if not 200 <= status < 300:
            raise CrmBadAnswer(f"CRM {where}: unexpected HTTP {status}", call=call, id_i=id_i)
        if want_json and body is None:
            raise CrmBadAnswer(f"CRM {where}: answer is not JSON", call=call, id_i=id_i)
        return body

    def _http(self, call: str, id_i: int | None, method: str, url: str, *,
              safe_to_repeat: bool, **request_args: Any) -> requests.Response:
        """Send one request, repeating it on transient failures when that is safe.

        Returns any answer that is not 5xx/429 (the caller judges it). The final
        exception is raised outside the `except` block, so no traceback chains to the
        requests exception, whose text holds the URL and with it the token.
        """
        attempt = 0
        while True:
            response, error = self._attempt(call, id_i, method, url, **request_args)
            if error is None and not _is_transient_status(response.status_code):
                return response
            if error is not None and not isinstance(error, NETWORK_ERRORS):
                raise CrmError(f"CRM {self._where(call, id_i)}: request failed: "
                               f"{self._describe(error)}", call=call, id_i=id_i)
            repeatable = safe_to_repeat or _never_processed(response, error)
            if not repeatable or attempt >= self.retries:
                break
            self._sleep(max(self.backoff * 2 ** attempt, _retry_after(response)))
            attempt += 1
        failure = self._describe(error) if error is not None else f"HTTP {response.status_code}"
        tries = f"{attempt + 1} attempt(s)"
        if not repeatable:
            tries += "; not repeated, the CRM may have processed it"
        raise CrmUnavailable(f"CRM {self._where(call, id_i)}: {failure} ({tries})",
                             call=call, id_i=id_i)

    def _attempt(self, call: str, id_i: int | None, method: str, url: str,
                 **request_args: Any) -> tuple[requests.Response | None, Exception | None]:
        with self._calls_lock:
            self.calls += 1
        started = time.monotonic()
        try:
            response = self._session.request(method, url, timeout=self.timeout, **request_args)
        except requests.RequestException as error:
            log.debug("CRM %s: %s after %.3f s", self._where(call, id_i),
                      type(error).__name__, time.monotonic() - started)
            return None, error
        log.debug("CRM %s: HTTP %s in %.3f s", self._where(call, id_i),
                  response.status_code, time.monotonic() - started)
        return response, None

    @staticmethod
    def _where(call: str, id_i: int | None) -> str:
        return call if id_i is None else f"{call} id_i={id_i}"

    def _describe(self, error: Exception) -> str:
        # requests wraps the useful reason ("Connection refused") in a long pool message.
        reason = error.args[0] if error.args else error
        if isinstance(reason, MaxRetryError) and reason.reason is not None:
            reason = reason.reason
        return f"{type(error).__name__}: {self._safe(str(reason))}"[:300]

    def _safe(self, text: str) -> str:
        """Text from outside (exception messages, the CRM's errors) without secrets."""
        text = _TOKEN_IN_URL.sub(r"\1***", text)
        for secret in (self._api_key, self._last_sign, *self._recent_tokens):
            if secret:
                text = text.replace(secret, "***")
        return text
