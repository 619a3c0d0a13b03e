"""The account side against the sandbox's account emulator (`sandbox/tgaccounts.py`),
over loopback HTTP — `TG_ACCOUNTS_BACKEND=sandbox`. The same `AccountClient` contract as
Telethon's: tests, the demo and the playground drive the very accounts process that
production runs, with only Telegram's servers emulated.

Updates are long-polled and confirmed like MTProto's `getDifference` state: an event is
confirmed (the next poll's offset) only after the accounts process stored it durably,
so a process killed in between reads it again (and the queue's key drops the copy).
"""
from __future__ import annotations

import asyncio
import base64
from typing import AsyncIterator

import requests

from channels.tgaccount.account import (AccountClient, AccountError, AccountEvent, AccountOffline,
                                        FloodWait, MediaInfo, MessageEvent, NotFound, OutFile,
                                        Person, ReadEvent, Refused, SessionRevoked)

POLL_SECONDS = 5.0
TIMEOUT = 15.0


def _person(data: dict | None) -> Person | None:
    if not data:
        return None
    return Person(id=int(data["id"]), username=data.get("username"), first_name=data.get("first_name"),
                  last_name=data.get("last_name"), phone=data.get("phone"), is_bot=bool(data.get("bot")))


def map_update(account: str, update: dict) -> AccountEvent | None:
    if update.get("type") == "read":
        return ReadEvent(account, int(update["peer_id"]), int(update["max_id"]))
    if update.get("type") != "message":
        return None
    message = update["message"]
    media = message.get("media")
    return MessageEvent(
        account=account, message_id=int(message["id"]), peer_id=int(message["peer_id"]),
        private=bool(message.get("private")), outgoing=bool(message.get("out")),
        text=message.get("text") or "",
        media=MediaInfo(media["kind"], media["name"], media["mime"], media.get("size")) if media else None,
        customer=_person(message.get("user")), date=message.get("date"), handle=int(message["id"]))


class EmulatedAccount(AccountClient):
    def __init__(self, account: str, *, base_url: str, session: str) -> None:
        self.account = account
        self.base = f"{base_url.rstrip('/')}/api/{account}"
        self._session = session
        self._http = requests.Session()
        self._online = False
        self._offset = 0
        self._update_ids: dict[int, int] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"EmulatedAccount({self.account!r})"

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self._http.request(method, self.base + path, headers={"X-Session": self._session},
                                          timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)
        except requests.RequestException as exc:
            self._online = False
            raise AccountOffline(f"{type(exc).__name__}") from exc
        if response.status_code == 200:
            return response
        try:
            error = str(response.json().get("error", ""))
        except ValueError:
            error = f"HTTP {response.status_code}"
        if response.status_code == 401:
            self._online = False
            raise SessionRevoked(error)
        if response.status_code == 420:
            raise FloodWait(float(response.json().get("seconds", 30)))
        if response.status_code == 403:
            raise Refused(error)
        if response.status_code in (400, 404):
            raise NotFound(error)
        if response.status_code >= 500:
            raise AccountOffline(error)
        raise AccountError(error)

    async def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        return await asyncio.to_thread(self._request, method, path, **kwargs)

    async def start(self) -> Person:
        me = (await self._call("POST", "/connect")).json()["me"]
        self._online = True
        return _person(me)

    async def stop(self) -> None:
        self._closed = True
        self._online = False
        self._http.close()

    def is_online(self) -> bool:
        return self._online

    async def events(self) -> AsyncIterator[AccountEvent]:
        while not self._closed:
            response = await self._call("GET", "/updates", params={"offset": self._offset,
                                                                   "timeout": POLL_SECONDS},
                                        timeout=POLL_SECONDS + TIMEOUT)
            self._online = True
            for update in response.json().get("updates", []):
                event = map_update(self.account, update)
                if event is None:
                    self._offset = max(self._offset, int(update["update_id"]) + 1)
                    continue
                self._update_ids[id(event)] = int(update["update_id"])
                yield event

    async def confirm(self, event: AccountEvent) -> None:
        update_id = self._update_ids.pop(id(event), None)
        if update_id is not None:
            self._offset = max(self._offset, update_id + 1)

    async def send_message(self, peer_id: int, text: str, files: list[OutFile]) -> int:
        body = {"peer_id": peer_id, "text": text,
                "files": [{"name": f.name, "mime": f.mime, "data": base64.b64encode(f.data).decode()}
                          for f in files]}
        return int((await self._call("POST", "/send", json=body)).json()["id"])

    async def resolve(self, *, user_id: int | None = None, username: str | None = None,
                      phone: str | None = None) -> Person:
        body = {k: v for k, v in (("user_id", user_id), ("username", username), ("phone", phone)) if v}
        return _person((await self._call("POST", "/resolve", json=body)).json()["user"])

    async def mark_read(self, peer_id: int, max_id: int | None = None) -> None:
        await self._call("POST", "/read", json={"peer_id": peer_id, "max_id": max_id})

    async def download(self, event: MessageEvent, limit: int) -> bytes | None:
        if event.media is None:
            return None
        if event.media.size is not None and event.media.size > limit:
            return None
        data = (await self._call("GET", f"/media/{event.handle}")).content
        return data if len(data) <= limit else None
