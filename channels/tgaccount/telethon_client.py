"""The real account side: Telethon (MTProto) behind `AccountClient`.

`map_message` is the whole of Telethon's event mapping — private vs group, incoming vs
outgoing, media kinds — as a pure function over Telethon's own types, so it is unit
tested without a network. Errors become the interface's: a session no longer authorised
→ SessionRevoked; FLOOD_WAIT over Telethon's own threshold → FloodWait (shorter ones
Telethon waits out itself); privacy / blocked / unknown user → Refused.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import random
from typing import AsyncIterator

from channels.tgaccount.account import (AccountClient, AccountError, AccountEvent, AccountOffline,
                                        FloodWait, MediaInfo, MessageEvent, NotFound, OutFile,
                                        Person, ReadEvent, Refused, SessionRevoked)
from channels.tgaccount.sessions import check_owner

log = logging.getLogger(__name__)

FLOOD_SLEEP_THRESHOLD = 60    # seconds Telethon sleeps through by itself


def person_of(user) -> Person | None:
    """A Telethon `User` as the interface's Person."""
    if user is None or not hasattr(user, "first_name"):
        return None
    return Person(id=int(user.id), username=getattr(user, "username", None) or None,
                  first_name=user.first_name or None, last_name=getattr(user, "last_name", None) or None,
                  phone=("+" + user.phone) if getattr(user, "phone", None) else None,
                  is_bot=bool(getattr(user, "bot", False)))


def media_of(media) -> MediaInfo | None:
    """A message's media kind, file name and type (None: no file, e.g. a web page preview)."""
    from telethon.tl import types
    if media is None or isinstance(media, (types.MessageMediaEmpty, types.MessageMediaWebPage)):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        return MediaInfo("photo", "photo.jpg", "image/jpeg", None)
    if isinstance(media, types.MessageMediaDocument) and isinstance(media.document, types.Document):
        document = media.document
        kind, name = "document", None
        for attribute in document.attributes:
            if isinstance(attribute, types.DocumentAttributeFilename):
                name = attribute.file_name
            elif isinstance(attribute, types.DocumentAttributeAudio):
                kind = "voice" if attribute.voice else "audio"
            elif isinstance(attribute, types.DocumentAttributeVideo):
                kind = "video_note" if attribute.round_message else "video"
            elif isinstance(attribute, types.DocumentAttributeSticker):
                kind = "sticker"
        if media.voice:
            kind = "voice"
        mime = document.mime_type or "application/octet-stream"
        if name is None:
            extension = {"voice": ".ogg", "video_note": ".mp4", "sticker": ".webp"}.get(
                kind, _extension(mime))
            name = f"{kind}{extension}"
        return MediaInfo(kind, name, mime, int(document.size) if document.size is not None else None)
    return MediaInfo("other", "attachment", "application/octet-stream", None)


def _extension(mime: str) -> str:
    import mimetypes
    return mimetypes.guess_extension(mime) or ".bin"


def map_message(message, account: str, customer=None, *, handle=None) -> MessageEvent | None:
    """A Telethon message of one of the account's chats → MessageEvent (None for a
    service message: joins, pins, calls). `customer`: the other side's Telethon User."""
    from telethon.tl import types
    if not isinstance(message, types.Message):
        return None
    peer = message.peer_id
    private = isinstance(peer, types.PeerUser)
    peer_id = peer.user_id if private else getattr(peer, "chat_id", None) or getattr(peer, "channel_id", 0)
    date = message.date.timestamp() if message.date is not None else None
    return MessageEvent(account=account, message_id=int(message.id), peer_id=int(peer_id),
                        private=private, outgoing=bool(message.out), text=message.message or "",
                        media=media_of(message.media), customer=person_of(customer),
                        date=date, handle=handle if handle is not None else message)


def _mapped(exc: BaseException) -> BaseException:
    from telethon import errors
    if isinstance(exc, (errors.AuthKeyUnregisteredError, errors.SessionRevokedError,
                        errors.UserDeactivatedError, errors.UserDeactivatedBanError,
                        errors.AuthKeyDuplicatedError)):
        return SessionRevoked(type(exc).__name__)
    if isinstance(exc, errors.FloodWaitError):
        return FloodWait(exc.seconds)
    if isinstance(exc, (errors.UserPrivacyRestrictedError, errors.UserIsBlockedError,
                        errors.InputUserDeactivatedError, errors.PeerFloodError)):
        return Refused(type(exc).__name__.removesuffix("Error"))
    if isinstance(exc, (errors.PeerIdInvalidError, errors.UsernameNotOccupiedError,
                        errors.UsernameInvalidError, ValueError)):
        return NotFound(str(exc)[:200] or type(exc).__name__)
    if isinstance(exc, (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError)):
        return AccountOffline(str(exc)[:200] or type(exc).__name__)
    if isinstance(exc, errors.RPCError):
        return AccountError(f"{type(exc).__name__}: {exc}"[:300])
    return exc


class TelethonAccount(AccountClient):
    """One account's Telethon session. `session`: a StringSession string (kept encrypted in
    MariaDB) or None to use the session file `path_session`/`name_session`."""

    def __init__(self, account: str, *, api_id: int, api_hash: str, session: str | None = None,
                 session_file: str | None = None) -> None:
        from telethon import TelegramClient
        from telethon.sessions import StringSession
        self.account = account
        self._session_file = session_file
        store = StringSession(session) if session else session_file
        if store is None:
            raise SessionRevoked("no session: log in with `python -m bot tg-login`")
        if not session and not os.path.exists(session_file + ".session"):
            # Telethon would create an empty one, and then ask for a login nobody answers.
            raise SessionRevoked(f"no session file {session_file}.session: run `python -m bot tg-login`")
        self.client = TelegramClient(store, api_id, api_hash, flood_sleep_threshold=FLOOD_SLEEP_THRESHOLD,
                                     catch_up=True, receive_updates=True)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._me: Person | None = None

    def __repr__(self) -> str:
        return f"TelethonAccount({self.account!r})"

    async def start(self) -> Person:
        from telethon import events
        try:
            await self.client.connect()
            if not await self.client.is_user_authorized():
                raise SessionRevoked("the session is not authorised (logged out or revoked)")
            me = await self.client.get_me()
        except AccountError:
            raise
        except Exception as exc:
            raise _mapped(exc) from exc
        self._me = person_of(me)
        check_owner(self.account, self._me.phone if self._me else None)   # before any handler
        self.client.add_event_handler(self._on_message, events.NewMessage())
        self.client.add_event_handler(self._on_read, events.MessageRead(inbox=False))
        self.client.disconnected.add_done_callback(lambda _: self._queue.put_nowait(None))
        return self._me

    async def _on_message(self, event) -> None:
        customer = None
        if event.is_private:
            try:
                customer = await event.get_chat()
            except Exception:  # the sender's details are a nicety; the message is what counts
                customer = None
        mapped = map_message(event.message, self.account, customer)
        if mapped is not None:
            await self._queue.put(mapped)

    async def _on_read(self, event) -> None:
        peer = getattr(event.original_update, "peer", None)
        user_id = getattr(peer, "user_id", None)
        if user_id is not None:
            await self._queue.put(ReadEvent(self.account, int(user_id), int(event.max_id)))

    async def stop(self) -> None:
        await self.client.disconnect()

    def is_online(self) -> bool:
        return self.client.is_connected() and self._me is not None

    async def events(self) -> AsyncIterator[AccountEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    async def _call(self, coro):
        try:
            return await coro
        except AccountError:
            raise
        except Exception as exc:
            raise _mapped(exc) from exc

    async def send_message(self, peer_id: int, text: str, files: list[OutFile]) -> int:
        entity = await self._call(self.client.get_input_entity(peer_id))
        last = None
        for number, item in enumerate(files):
            buffer = io.BytesIO(item.data)
            buffer.name = item.name
            caption = text if number == len(files) - 1 else ""
            last = await self._call(self.client.send_file(entity, buffer, caption=caption or None))
        if not files:
            last = await self._call(self.client.send_message(entity, text))
        return int(last.id)

    async def resolve(self, *, user_id: int | None = None, username: str | None = None,
                      phone: str | None = None) -> Person:
        from telethon.tl import functions, types
        if user_id:
            try:
                return person_of(await self._call(self.client.get_entity(types.PeerUser(user_id))))
            except NotFound:
                pass
        if username:
            try:
                found = person_of(await self._call(self.client.get_entity(username.lstrip("@"))))
                if found is not None:
                    return found
            except NotFound:
                pass
        if phone:
            result = await self._call(self.client(functions.contacts.ImportContactsRequest([
                types.InputPhoneContact(client_id=random.randrange(1, 2**62), phone=phone,
                                        first_name=phone, last_name="")])))
            if result.users:
                return person_of(result.users[0])
        raise NotFound("no Telegram user with this id, username or phone")

    async def mark_read(self, peer_id: int, max_id: int | None = None) -> None:
        entity = await self._call(self.client.get_input_entity(peer_id))
        await self._call(self.client.send_read_acknowledge(entity, max_id=max_id))

    async def download(self, event: MessageEvent, limit: int) -> bytes | None:
        if event.media is None or event.handle is None:
            return None
        if event.media.size is not None and event.media.size > limit:
            return None
        data = await self._call(self.client.download_media(event.handle, file=bytes))
        return data if data is not None and len(data) <= limit else None

    def session_string(self) -> str:
        from telethon.sessions import StringSession
        return StringSession.save(self.client.session)
