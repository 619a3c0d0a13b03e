"""Logging a Telegram account in, behind one small interface — the accounts process holds
a `LoginClient` for as long as the conversation with Telegram lasts (minutes: a QR code
scanned, a code typed, a cloud password), never a web request.

Two ways in, as Telegram has them:
* **QR** (core.telegram.org/api/qr-login): `qr_token()` → the `tg://login?token=…` to show
  and when it expires; `qr_wait(seconds)` → the account once its owner scanned it in
  Telegram → Settings → Devices, None when the token expired first (ask a new one);
* **code**: `send_code(phone)`, then `sign_in(code)`; either may raise `PasswordNeeded`
  (the account has a cloud password: `check_password(password)`, SRP computed by the
  client, the password never sent).
`session()` is then the account's session string (kept sealed in MariaDB, never a file).

Two implementations: `TelethonLogin` (Telethon's own `qr_login`, `send_code_request`,
`sign_in`) and `EmulatedLogin` (the account emulator over loopback HTTP, the same seam as
`emulated.EmulatedAccount`; it computes SRP with Telethon's own routine).
"""
from __future__ import annotations

import asyncio
import base64
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import requests

from channels.tgaccount.account import AccountError, AccountOffline, FloodWait, Person


class LoginRefused(AccountError):
    """Telegram refused a step (a wrong code, a wrong password, an unknown number):
    `reason` is what to tell the person; the login may go on (`again`) or not."""

    def __init__(self, reason: str, *, again: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.again = again


class PasswordNeeded(AccountError):
    def __init__(self, hint: str | None = None) -> None:
        super().__init__("the account has a cloud password")
        self.hint = hint


@dataclass(frozen=True)
class QrToken:
    url: str            # tg://login?token=<base64url>
    expires: float      # unix time

    def __repr__(self) -> str:
        return "QrToken(…)"


_REASONS = {
    "PHONE_CODE_INVALID": ("The code is wrong; type the code Telegram sent again.", True),
    "PHONE_CODE_EXPIRED": ("The code expired; start the login again.", False),
    "PHONE_CODE_HASH_EMPTY": ("Telegram has no code on its way for this login; start again.", False),
    "PHONE_NUMBER_INVALID": ("Telegram knows no account with this number.", False),
    "PHONE_NUMBER_BANNED": ("This number is banned by Telegram.", False),
    "PASSWORD_HASH_INVALID": ("The cloud password is wrong; try again.", True),
    "SRP_ID_INVALID": ("Telegram asks for the password again; try again.", True),
    "AUTH_TOKEN_EXPIRED": ("The QR code expired.", True),
}


def refusal(name: str) -> LoginRefused:
    reason, again = _REASONS.get(name, (f"Telegram refused the login ({name[:60]}).", False))
    return LoginRefused(reason, again=again)


class LoginClient(ABC):
    @abstractmethod
    async def qr_token(self) -> QrToken: ...

    @abstractmethod
    async def qr_wait(self, seconds: float) -> Person | None: ...

    @abstractmethod
    async def send_code(self, phone: str) -> None: ...

    @abstractmethod
    async def sign_in(self, code: str) -> Person: ...

    @abstractmethod
    async def check_password(self, password: str) -> Person: ...

    @abstractmethod
    async def password_hint(self) -> str | None:
        """The cloud password's hint (account.getPassword), once PasswordNeeded was raised."""

    @abstractmethod
    def session(self) -> str: ...

    @abstractmethod
    async def close(self) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(…)"


# -- the account emulator ----------------------------------------------------------------------

def _person(data: dict) -> Person:
    return Person(id=int(data["id"]), username=data.get("username"), first_name=data.get("first_name"),
                  last_name=data.get("last_name"), phone=data.get("phone"), is_bot=bool(data.get("bot")))


class EmulatedLogin(LoginClient):
    def __init__(self, base_url: str, *, timeout: float = 15.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()
        self._key: str | None = None
        self._phone: str | None = None
        self._code_hash: str | None = None
        self._token: QrToken | None = None

    def _post(self, path: str, body: dict | None = None) -> dict:
        headers = {"X-Session": self._key} if self._key else {}
        try:
            response = self._http.post(self.base + path, json=body or {}, headers=headers,
                                       timeout=self.timeout)
        except requests.RequestException as exc:
            raise AccountOffline(type(exc).__name__) from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code == 200:
            return data
        name = str(data.get("error") or f"HTTP {response.status_code}")
        if name == "SESSION_PASSWORD_NEEDED":
            raise PasswordNeeded()
        if name.startswith("FLOOD_WAIT_"):
            raise FloodWait(float(name.rsplit("_", 1)[1] or 30))
        if response.status_code >= 500:
            raise AccountOffline(name)
        raise refusal(name)

    async def _call(self, path: str, body: dict | None = None) -> dict:
        if self._key is None and path != "/auth/session":
            self._key = (await asyncio.to_thread(self._post, "/auth/session"))["session"]
        return await asyncio.to_thread(self._post, path, body)

    async def qr_token(self) -> QrToken:
        answer = await self._call("/auth/exportLoginToken")
        if "success" in answer:
            raise LoginRefused("already logged in", again=False)
        token = base64.urlsafe_b64encode(base64.b64decode(answer["token"])).decode().rstrip("=")
        self._token = QrToken(f"tg://login?token={token}", float(answer["expires"]))
        return self._token

    async def qr_wait(self, seconds: float) -> Person | None:
        # Telegram pushes updateLoginToken once the token is accepted; the client then
        # calls exportLoginToken again, which answers loginTokenSuccess.
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            pushed = await self._call("/auth/waitUpdates", {"timeout": min(left, 5.0)})
            if "updateLoginToken" in pushed.get("updates", []):
                answer = await self._call("/auth/exportLoginToken")
                if "success" in answer:
                    return _person(answer["success"]["me"])

    @property
    def current(self) -> QrToken | None:
        return self._token

    async def send_code(self, phone: str) -> None:
        self._phone = phone
        self._code_hash = (await self._call("/auth/sendCode", {"phone_number": phone}))["phone_code_hash"]

    async def sign_in(self, code: str) -> Person:
        answer = await self._call("/auth/signIn", {"phone_number": self._phone,
                                                   "phone_code_hash": self._code_hash,
                                                   "phone_code": code})
        return _person(answer["me"])

    async def check_password(self, password: str) -> Person:
        from telethon import types
        from telethon.password import compute_check
        state = await self._call("/account/getPassword")
        if not state.get("has_password"):
            raise LoginRefused("the account has no cloud password any more; start again", again=False)
        algo = state["current_algo"]
        request = types.account.Password(
            new_algo=types.PasswordKdfAlgoUnknown(), new_secure_algo=types.SecurePasswordKdfAlgoUnknown(),
            secure_random=b"", has_password=True,
            current_algo=types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
                salt1=bytes.fromhex(algo["salt1"]), salt2=bytes.fromhex(algo["salt2"]), g=int(algo["g"]),
                p=bytes.fromhex(algo["p"])),
            srp_B=bytes.fromhex(state["srp_B"]), srp_id=int(state["srp_id"]), hint=state.get("hint"))
        check = await asyncio.to_thread(compute_check, request, password)
        answer = await self._call("/auth/checkPassword", {"srp_id": check.srp_id, "A": check.A.hex(),
                                                          "M1": check.M1.hex()})
        return _person(answer["me"])

    async def password_hint(self) -> str | None:
        return (await self._call("/account/getPassword")).get("hint")

    def session(self) -> str:
        if self._key is None:
            raise AccountError("no session yet")
        return self._key

    async def close(self) -> None:
        self._http.close()


# -- Telethon -----------------------------------------------------------------------------------

def rpc_name(exc) -> str:
    """Telegram's name of a Telethon RPC error: a known one is its own class
    (PhoneCodeInvalidError → PHONE_CODE_INVALID), an unknown one carries the name."""
    name = type(exc).__name__
    if name.endswith("Error") and name not in ("RPCError", "BadRequestError", "UnauthorizedError",
                                               "ForbiddenError", "FloodError", "ServerError"):
        import re
        return re.sub(r"(?<!^)(?=[A-Z])", "_", name[:-len("Error")]).upper()
    return str(getattr(exc, "message", "") or name).upper()


class TelethonLogin(LoginClient):
    """Telethon's client on an in-memory StringSession: nothing is written to disk."""

    def __init__(self, *, api_id: int, api_hash: str) -> None:
        from telethon import TelegramClient
        from telethon.sessions import StringSession
        self.client = TelegramClient(StringSession(), api_id, api_hash)
        self._qr = None
        self._phone: str | None = None

    async def _connected(self):
        if not self.client.is_connected():
            await self.client.connect()
        return self.client

    def _mapped(self, exc: Exception) -> Exception:
        from telethon import errors
        if isinstance(exc, errors.SessionPasswordNeededError):
            return PasswordNeeded()
        if isinstance(exc, errors.FloodWaitError):
            return FloodWait(float(exc.seconds))
        if isinstance(exc, errors.RPCError):
            return refusal(rpc_name(exc))
        if isinstance(exc, (ConnectionError, OSError)):
            return AccountOffline(type(exc).__name__)
        return exc

    async def qr_token(self) -> QrToken:
        try:
            client = await self._connected()
            if self._qr is None:
                self._qr = await client.qr_login()
            else:
                await self._qr.recreate()
        except Exception as exc:
            raise self._mapped(exc) from exc
        return QrToken(self._qr.url, self._qr.expires.timestamp())

    async def qr_wait(self, seconds: float) -> Person | None:
        from channels.tgaccount.telethon_client import person_of
        try:
            user = await self._qr.wait(timeout=seconds)
        except asyncio.TimeoutError:
            return None
        except Exception as exc:
            raise self._mapped(exc) from exc
        return person_of(user)

    async def send_code(self, phone: str) -> None:
        self._phone = phone
        try:
            await (await self._connected()).send_code_request(phone)
        except Exception as exc:
            raise self._mapped(exc) from exc

    async def sign_in(self, code: str) -> Person:
        from channels.tgaccount.telethon_client import person_of
        try:
            return person_of(await self.client.sign_in(phone=self._phone, code=code))
        except Exception as exc:
            raise self._mapped(exc) from exc

    async def check_password(self, password: str) -> Person:
        from channels.tgaccount.telethon_client import person_of
        try:
            return person_of(await (await self._connected()).sign_in(password=password))
        except Exception as exc:
            raise self._mapped(exc) from exc

    async def password_hint(self) -> str | None:
        from telethon import functions
        try:
            return (await self.client(functions.account.GetPasswordRequest())).hint
        except Exception as exc:
            raise self._mapped(exc) from exc

    def session(self) -> str:
        return self.client.session.save()

    async def close(self) -> None:
        try:
            await self.client.disconnect()
        except Exception:
            pass
