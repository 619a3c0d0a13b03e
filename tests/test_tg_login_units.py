"""The account emulator's login is Telegram's as documented, checked with the clients
KeepDesk uses: the cloud password proved by SRP (Telethon's own computation) against a
verifier the emulator keeps instead of the password; a QR token accepted once, refused
once expired; the login's session is the account's and nothing else."""
from __future__ import annotations

import asyncio

import pytest

from channels.tgaccount.emulated import EmulatedAccount
from channels.tgaccount.login import EmulatedLogin, LoginRefused, PasswordNeeded
from sandbox.tglogin_auth import AuthError

NUMBER = "380501119999"


def run(coro):
    return asyncio.run(coro)


def test_a_cloud_password_is_proved_by_srp_and_the_emulator_keeps_no_password(tga):
    tga.add_account(NUMBER)
    tga.set_password(NUMBER, "s3cret words", hint="words")
    stored = tga._account(NUMBER).password
    assert "s3cret words" not in repr(vars(stored)) and stored.verifier > 1

    async def flow():
        client = EmulatedLogin(tga.url)
        await client.send_code("+" + NUMBER)
        with pytest.raises(LoginRefused, match="code is wrong"):
            await client.sign_in("1")
        with pytest.raises(PasswordNeeded):
            await client.sign_in(tga.login_code(NUMBER))
        assert await client.password_hint() == "words"
        with pytest.raises(LoginRefused, match="password is wrong"):
            await client.check_password("s3cret word")
        assert tga.login_sessions(NUMBER) == []
        me = await client.check_password("s3cret words")
        assert me.phone == "+" + NUMBER
        # The login's session is the account's: the relay's client connects with it.
        account = EmulatedAccount(NUMBER, base_url=tga.url, session=client.session())
        assert (await account.start()).phone == "+" + NUMBER
        await account.stop()
        await client.close()
    run(flow())


def test_a_qr_token_is_accepted_once_and_not_after_it_expired(tga):
    tga.add_account(NUMBER)

    async def flow():
        client = EmulatedLogin(tga.url)
        tga.qr_ttl = 0.5
        stale = await client.qr_token()
        assert await client.qr_wait(1.0) is None          # expired unscanned: a new one is needed
        with pytest.raises(AuthError, match="AUTH_TOKEN_EXPIRED"):
            tga.scan(NUMBER, stale.url)
        tga.qr_ttl = 60
        fresh = await client.qr_token()
        assert fresh.url != stale.url and fresh.url.startswith("tg://login?token=")
        with pytest.raises(AuthError, match="AUTH_TOKEN_INVALID"):
            tga.scan(NUMBER, fresh.url[:-3] + "AAA")
        tga.scan(NUMBER, fresh.url)
        with pytest.raises(AuthError, match="AUTH_TOKEN_ALREADY_ACCEPTED"):
            tga.scan(NUMBER, fresh.url)
        me = await client.qr_wait(5.0)
        assert me is not None and me.phone == "+" + NUMBER
        assert tga.login_sessions(NUMBER) == [client.session()]
        await client.close()
    run(flow())


def test_telethon_s_login_errors_become_the_login_s_words():
    from telethon import errors

    from channels.tgaccount.account import FloodWait
    from channels.tgaccount.login import TelethonLogin

    async def mapped():
        login = TelethonLogin(api_id=1, api_hash="0" * 32)   # not connected: nothing leaves
        try:
            return [login._mapped(exc) for exc in (
                errors.SessionPasswordNeededError(request=None), errors.PhoneCodeInvalidError(request=None),
                errors.PhoneCodeExpiredError(request=None), errors.PasswordHashInvalidError(request=None),
                errors.FloodWaitError(request=None, capture=42))]
        finally:
            await login.close()
    password, wrong_code, expired, wrong_password, flood = run(mapped())
    assert isinstance(password, PasswordNeeded)
    assert isinstance(wrong_code, LoginRefused) and wrong_code.again and "code is wrong" in wrong_code.reason
    assert isinstance(expired, LoginRefused) and not expired.again
    assert isinstance(wrong_password, LoginRefused) and wrong_password.again
    assert isinstance(flood, FloodWait) and flood.retry_after == 42
