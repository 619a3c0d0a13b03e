"""The parts of the Telegram-account relay that need no network: Telethon's event mapping
(with Telethon's own types), signed links, sealed secrets, the management body, Planfix's
form, and `tg-login`'s choices."""
from __future__ import annotations

import datetime
import secrets

import pytest
from telethon.tl import types
from werkzeug.datastructures import MultiDict

from channels.tgaccount.telethon_client import _mapped, map_message, media_of
from channels.tgaccount import account as acc
from desks.planfix.clients import normalise_number, parse_body
from desks.planfix.webhook import Invalid, parse_new_message
from scripts.tglogin import destination
from utils import signed
from utils.http import BadBody
from utils.secretbox import SecretBox, new_token, same_hash, token_hash

WHEN = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)


def user(id=4242, **kw):
    return types.User(id=id, first_name=kw.pop("first_name", "Ivan"), **kw)


def document(mime, *attributes, size=1234):
    return types.Document(id=1, access_hash=2, file_reference=b"", date=WHEN, mime_type=mime, size=size,
                          dc_id=2, attributes=list(attributes))


def message(peer, text="hi", out=False, media=None, id=10):
    return types.Message(id=id, peer_id=peer, date=WHEN, message=text, out=out, media=media)


def test_a_private_incoming_text_is_relayable_with_its_customer():
    event = map_message(message(types.PeerUser(4242), "Є в наявності?"), "380501112233",
                        user(last_name="Petrenko", username="ivan_p", phone="380671234567"))
    assert (event.peer_id, event.private, event.outgoing, event.text) == (4242, True, False, "Є в наявності?")
    assert event.customer == acc.Person(4242, "ivan_p", "Ivan", "Petrenko", "+380671234567")
    assert event.relayable and event.date == WHEN.timestamp()


def test_groups_channels_the_service_account_and_planfix_bot_are_not_relayable():
    assert not map_message(message(types.PeerChat(77)), "1").relayable
    assert not map_message(message(types.PeerChannel(88)), "1").relayable
    assert not map_message(message(types.PeerUser(777000)), "1", user(777000)).relayable
    bot = map_message(message(types.PeerUser(55)), "1", user(55, username="Planfix_Bot", bot=True))
    assert not bot.relayable


def test_outgoing_is_what_the_account_wrote():
    event = map_message(message(types.PeerUser(4242), "Дякую", out=True), "1")
    assert event.outgoing and event.relayable


def test_service_messages_are_not_events():
    service = types.MessageService(id=3, peer_id=types.PeerUser(4242), date=WHEN,
                                   action=types.MessageActionHistoryClear())
    assert map_message(service, "1") is None


@pytest.mark.parametrize("media,kind,name,mime", [
    (types.MessageMediaPhoto(photo=types.PhotoEmpty(id=1)), "photo", "photo.jpg", "image/jpeg"),
    (types.MessageMediaDocument(document=document("application/pdf", types.DocumentAttributeFilename("рахунок.pdf"))),
     "document", "рахунок.pdf", "application/pdf"),
    (types.MessageMediaDocument(voice=True, document=document("audio/ogg", types.DocumentAttributeAudio(3, voice=True))),
     "voice", "voice.ogg", "audio/ogg"),
    (types.MessageMediaDocument(document=document("audio/mpeg", types.DocumentAttributeAudio(90),
                                                  types.DocumentAttributeFilename("song.mp3"))),
     "audio", "song.mp3", "audio/mpeg"),
    (types.MessageMediaDocument(document=document("video/mp4", types.DocumentAttributeVideo(5, 640, 480))),
     "video", "video.mp4", "video/mp4"),
    (types.MessageMediaDocument(document=document("video/mp4", types.DocumentAttributeVideo(5, 240, 240,
                                                                                            round_message=True))),
     "video_note", "video_note.mp4", "video/mp4"),
    (types.MessageMediaDocument(document=document("image/webp", types.DocumentAttributeSticker(
        "🙂", types.InputStickerSetEmpty()))), "sticker", "sticker.webp", "image/webp"),
    (types.MessageMediaGeo(geo=types.GeoPoint(30.5, 50.4, 0)), "other", "attachment", "application/octet-stream"),
])
def test_media_kinds(media, kind, name, mime):
    info = media_of(media)
    assert (info.kind, info.name, info.mime) == (kind, name, mime)
    assert map_message(message(types.PeerUser(1), "", media=media), "1").media == info


def test_no_file_for_web_page_previews():
    assert media_of(types.MessageMediaWebPage(webpage=types.WebPageEmpty(id=1))) is None


def test_telethon_errors_become_the_interfaces():
    from telethon import errors
    assert isinstance(_mapped(errors.AuthKeyUnregisteredError(request=None)), acc.SessionRevoked)
    flood = _mapped(errors.FloodWaitError(request=None, capture=42))
    assert isinstance(flood, acc.FloodWait) and flood.retry_after == 42 and flood.transient
    privacy = _mapped(errors.UserPrivacyRestrictedError(request=None))
    assert isinstance(privacy, acc.Refused) and not privacy.transient
    assert isinstance(_mapped(ConnectionError("reset")), acc.AccountOffline)


def test_signed_links_open_one_path_until_they_expire():
    key = b"k" * 32
    query = signed.sign("/media/7", key, ttl=60, now=1000)
    assert signed.verify("/media/7", query["e"], query["s"], key, now=1059)
    assert not signed.verify("/media/7", query["e"], query["s"], key, now=1061)       # expired
    assert not signed.verify("/media/8", query["e"], query["s"], key, now=1000)       # another file
    assert not signed.verify("/media/7", str(int(query["e"]) + 999), query["s"], key, now=1000)
    assert not signed.verify("/media/7", query["e"], query["s"], b"x" * 32, now=1000)
    assert not signed.verify("/media/7", None, None, key)
    assert signed.signed_url("https://door/", "/media/7", key, ttl=60, now=1000).startswith("https://door/media/7?e=1060&s=")


def test_secrets_are_sealed_and_tokens_hashed():
    box = SecretBox("a long passphrase")
    sealed = box.seal("planfix-token")
    assert "planfix-token" not in sealed and box.open(sealed) == "planfix-token"
    with pytest.raises(ValueError):
        SecretBox("another key").open(sealed)
    token = new_token()
    assert len(token) >= 40 and same_hash(token, token_hash(token)) and not same_hash("x", token_hash(token))
    assert "passphrase" not in repr(box)


def test_the_management_body_is_bounded_at_the_border():
    good = {"name": "shop", "number": "+380 (50) 111-22-33", "url_planfix": "https://shop.planfix.ua/",
            "token_planfix": "t", "name_session": "main", "path_session": "/srv/sessions"}
    parsed = parse_body(good, full=True)
    assert (parsed.number, parsed.url_planfix) == ("380501112233", "https://shop.planfix.ua")
    for bad in ({"number": "abc"}, {"number": "+1"}, {"url_planfix": "javascript:x"}, {"name": "<b>" * 50},
                {"name_session": "../etc"}, {"token_planfix": 5}, {"path_session": None}):
        with pytest.raises(BadBody):
            parse_body(dict(good, **bad), full=True)
    assert normalise_number(380501112233) == "380501112233" and normalise_number("12345x67") is None


def test_planfix_form_is_parsed_into_bounded_values():
    form = MultiDict([("cmd", "newMessage"), ("token", "t"), ("messageId", "m1"), ("message", "Привіт"),
                      ("contactPhone", "+38 099 111 22 33"), ("telegramUserName", "@petro_shop"),
                      ("attachments[name]", "a.pdf"), ("attachments[url]", "https://pf/a.pdf"),
                      ("attachments[1][name]", "b.png"), ("attachments[1][url]", "https://pf/b.png")])
    parsed = parse_new_message(form)
    assert (parsed.phone, parsed.username, parsed.chat_id) == ("+380991112233", "petro_shop", None)
    assert parsed.attachments == (("a.pdf", "https://pf/a.pdf"), ("b.png", "https://pf/b.png"))
    for broken in ({"messageId": ""}, {"telegramUserId": "12x"}, {"message": "x" * 5000},
                   {"attachments[url]": "file:///etc/passwd"}):
        fields = MultiDict(form)
        for key, value in broken.items():
            fields.setlist(key, [value])
        with pytest.raises(Invalid):
            parse_new_message(fields)
    with pytest.raises(Invalid):   # nobody to send to
        parse_new_message(MultiDict({"token": "t", "messageId": "m", "message": "x"}))


def test_tg_login_destinations():
    assert destination("+380 50 111 22 33", file=None, store=True).store
    target = destination("380501112233", file="/srv/s/main.session", store=False)
    assert (target.file, target.store) == ("/srv/s/main", False)
    assert destination("380501112233", file=None, store=False).file.endswith("sessions/380501112233")
    with pytest.raises(ValueError):
        destination("12", file=None, store=False)
    with pytest.raises(ValueError):
        destination("380501112233", file="x", store=True)


def test_tg_login_keeps_the_session_sealed_and_restarts_the_account(planfix_settings, db):
    from models.tgaccounts import AccountRepository
    from scripts.tglogin import store_session
    box = SecretBox(planfix_settings.tg_accounts_key)
    accounts = AccountRepository(db)
    assert not store_session(planfix_settings, db, "380501112233", "SESSION")
    accounts.create(client_name="shop", number="380501112233", url_planfix="https://pf", token_planfix_enc=box.seal("t"),
                    name_session="main", path_session=None, session_enc=None, token_hash=token_hash("x"))
    assert store_session(planfix_settings, db, "380501112233", "SESSION")
    row = accounts.get("380501112233")
    assert box.open(row.session_enc) == "SESSION" and "SESSION" not in row.session_enc and row.generation == 2


def test_a_telethon_account_without_its_session_file_is_refused_before_any_network(tmp_path):
    import asyncio
    from channels.tgaccount.telethon_client import TelethonAccount

    async def build():
        with pytest.raises(acc.SessionRevoked):
            TelethonAccount("380501112233", api_id=1, api_hash="0" * 32, session_file=str(tmp_path / "none"))
        assert not (tmp_path / "none.session").exists()          # no empty session left behind
        from telethon.crypto import AuthKey
        from telethon.sessions import StringSession
        stored = StringSession()
        stored.set_dc(2, "149.154.167.51", 443)
        stored.auth_key = AuthKey(bytes(256))
        account = TelethonAccount("380501112233", api_id=1, api_hash="0" * 32, session=stored.save())
        assert not account.is_online()
    asyncio.run(build())


def test_a_value_sealed_with_the_former_key_derivation_opens_and_asks_to_be_sealed_again():
    import base64
    import hashlib
    from cryptography.fernet import Fernet
    key = "k" * 16 + "0123456789abcdef"
    former = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"keepdesk-secretbox:" + key.encode()).digest()))
    old = former.encrypt(b"old session").decode()
    box = SecretBox(key)
    assert box.open(old) == "old session" and box.needs_reseal(old)
    new = box.seal("old session")
    assert new.startswith("v2:") and not box.needs_reseal(new) and box.open(new) == "old session"
    with pytest.raises(Exception):
        former.decrypt(new[3:].encode())             # the new key is not the bare hash any more
    with pytest.raises(ValueError):
        SecretBox("z" * 40).open(old)


def test_a_weak_or_missing_accounts_key_stops_start_up_naming_it():
    from config import SettingsError, load_settings
    from conftest import TG_ACCOUNTS_KEY
    base = {"BOT_TOKEN": "123456:" + "A" * 35, "PLANFIX_ADMIN_TOKEN": "admin", "PLANFIX_PROVIDER_ID": "p",
            "PUBLIC_URL": "https://door.example", "SECRET_KEY": "k3Y-" + secrets.token_urlsafe(32),
            "METRICS_TOKEN": secrets.token_urlsafe(24)}
    for weak in ("short-passphrase", "a" * 64, "abababababababababababababababab12"):
        with pytest.raises(SettingsError, match="TG_ACCOUNTS_KEY"):
            load_settings(dict(base, TG_ACCOUNTS_KEY=weak), env_file=None)
    with pytest.raises(SettingsError, match="TG_ACCOUNTS_KEY is required"):
        load_settings(base, env_file=None)
    assert load_settings(dict(base, TG_ACCOUNTS_KEY=TG_ACCOUNTS_KEY), env_file=None).planfix_configured


def test_a_session_path_stays_inside_the_sessions_folder(tmp_path):
    from channels.tgaccount.sessions import SessionRefused, door_path, session_file
    folder = tmp_path / "sessions"
    folder.mkdir()
    assert door_path("shop/") == "shop/" and door_path(" . ") == "."
    for bad in ("../x", "/srv/sessions", "a/../../x", "~root", "a\\..\\b", "a\x00b"):
        with pytest.raises(ValueError):
            door_path(bad)
    assert session_file(folder, ".", "main") == str(folder.resolve() / "main")
    assert session_file(folder, "shop/main.session", "ignored") == str(folder.resolve() / "shop" / "main")
    assert session_file(folder, str(folder), "main") == str(folder.resolve() / "main")   # a row from before
    (folder / "out").symlink_to(tmp_path, target_is_directory=True)
    (folder / "evil.session").symlink_to(tmp_path / "victim.session")
    for path, name in (("out", "main"), (".", "evil"), ("..", "main"), (str(tmp_path), "main")):
        with pytest.raises(SessionRefused):
            session_file(folder, path, name)


def test_a_session_whose_own_phone_is_another_number_is_refused():
    from channels.tgaccount.sessions import SessionRefused, check_owner
    from channels.tgaccount.telethon_client import person_of
    check_owner("380501112233", person_of(user(phone="380501112233")).phone)     # Telethon's get_me
    check_owner("+380 50 111 22 33", "+380501112233")
    for phone in ("380671112233", None, ""):
        with pytest.raises(SessionRefused):
            check_owner("380501112233", phone)


class _FakeTelegram:
    """Telethon's sign-in, as far as tg-login's files go: the session file appears when
    the client starts (SQLite creates it under the process's umask), get_me answers."""
    phone = "380501112233"

    def __init__(self, session, api_id, api_hash):
        self.file = session + ".session"

    def start(self, **callbacks):
        with open(self.file, "w") as handle:
            handle.write("sqlite session")

    def get_me(self):
        return types.User(id=1, first_name="Shop", phone=_FakeTelegram.phone)

    def disconnect(self):
        with open(self.file, "a") as handle:   # Telethon saves the session on disconnect
            handle.write("!")


def test_tg_login_writes_its_session_file_0600_in_a_0700_folder(planfix_settings, tmp_path, monkeypatch, capsys):
    import os
    import stat
    import telethon.sync
    from scripts.tglogin import main
    monkeypatch.setattr(telethon.sync, "TelegramClient", _FakeTelegram)
    settings = planfix_settings.replace(telegram_api_id=1, telegram_api_hash="0" * 32, tg_sessions_dir=tmp_path / "s")
    os.umask(0o022)
    target = destination("380501112233", file=None, store=False, folder=settings.tg_sessions_dir)
    assert main(settings, target) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "380501112233.session").st_mode) == 0o600
    assert "path_session=., name_session=380501112233" in capsys.readouterr().out
    # A folder and file left 0755 / 0644 by an older tg-login are made private.
    os.chmod(tmp_path / "s", 0o755)
    os.chmod(tmp_path / "s" / "380501112233.session", 0o644)
    assert main(settings, target) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "380501112233.session").st_mode) == 0o600
    assert os.umask(0o022) == 0o022                             # the umask is given back
    # Signed in as another account than NUMBER: said so, not offered as the number's.
    monkeypatch.setattr(_FakeTelegram, "phone", "380671112233")
    assert main(settings, target) == 1
    assert "not the account of +380501112233" in capsys.readouterr().out


def test_a_telethon_session_of_another_account_is_refused_before_any_event_handler():
    import asyncio
    from channels.tgaccount.sessions import SessionRefused
    from channels.tgaccount.telethon_client import TelethonAccount
    from telethon.crypto import AuthKey
    from telethon.sessions import StringSession

    class Connected:   # Telethon's client after connect, as far as start() asks it
        handlers: list = []

        async def connect(self):
            return None

        async def is_user_authorized(self):
            return True

        async def get_me(self):
            return user(phone="380671112233")

        def add_event_handler(self, *args):
            self.handlers.append(args)

    async def run():
        stored = StringSession()
        stored.set_dc(2, "149.154.167.51", 443)
        stored.auth_key = AuthKey(bytes(256))
        account = TelethonAccount("380501112233", api_id=1, api_hash="0" * 32, session=stored.save())
        account.client = Connected()
        with pytest.raises(SessionRefused, match="another account"):
            await account.start()
        assert Connected.handlers == []
    asyncio.run(run())
