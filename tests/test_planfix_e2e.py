"""Telegram accounts ↔ Planfix end to end (CHANNELS.md §5, issue 13's "Done when"), with
real processes: `python -m bot accounts` (the accounts' sessions), the integrations door
and workers of KeepDesk, the account emulator and the Planfix emulator over loopback."""
from __future__ import annotations

import base64
import time

import pytest
import requests

from conftest import LOG_CHAT, PLANFIX_ADMIN_TOKEN, SHARED_CHAT
from harness import Desk, relayed_message_dead_letter, wait_for
from sandbox.telegram import parse_html

NUMBER = "380501112233"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"customer-photo" * 50


@pytest.fixture
def relay(planfix_settings, db, tg, crm, tga, planfix, accounts_env):
    running = Desk(planfix_settings, db, tg, crm).start()
    running.accounts = running.start_accounts(accounts_env)
    yield running
    running.stop()


@pytest.fixture
def both_relay(planfix_settings, db, tg, crm, tga, planfix, accounts_env):
    running = Desk(planfix_settings.replace(tg_accounts_routing="both"), db, tg, crm).start()
    running.accounts = running.start_accounts(dict(accounts_env, TG_ACCOUNTS_ROUTING="both"))
    yield running
    running.stop()


def clients(desk, method: str, body: dict, token: str | None):
    headers = {"Token": token} if token else {}
    return requests.request(method, f"{desk.listener_url}/planfix/clients", json=body, headers=headers,
                            timeout=10)


def account_body(planfix, tmp_path, *, name="shop", number="+" + NUMBER, session_name="main") -> dict:
    return {"name": name, "number": number, "url_planfix": planfix.url, "token_planfix": planfix.token,
            "name_session": session_name, "path_session": "."}   # the sessions folder: tmp_path


def start_account(desk, tga, planfix, tmp_path, number=NUMBER, name="shop") -> str:
    (tmp_path / "main.session").write_text(tga.add_account(number))
    answer = clients(desk, "POST", account_body(planfix, tmp_path, name=name, number="+" + number),
                     PLANFIX_ADMIN_TOKEN)
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    wait_for(lambda: status(desk, token, number, name) == "online", timeout=20)
    return token


def status(desk, token, number=NUMBER, name="shop") -> str:
    return clients(desk, "GET", {"name": name, "number": number}, token).json().get("status")


def received(planfix, cmd="newMessage", **match):
    return [r for r in planfix.received(cmd) if all(r.get(k) == v for k, v in match.items())]


def test_a_second_accounts_process_stands_by_and_takes_the_accounts_over_when_the_first_dies(
        relay, tga, planfix, tmp_path, db, accounts_env):
    """Two hosts each run `python -m bot accounts`: one holds the accounts' sessions (a
    lease row), the other connects nothing; killed -9, the first is replaced by the second,
    and a customer's next message reaches Planfix."""
    start_account(relay, tga, planfix, tmp_path)
    holder = db.scalar("SELECT holder FROM leases WHERE name = 'tg-accounts'")
    assert holder
    connects = len(tga.calls("connect"))
    standby = relay.start_accounts(accounts_env)
    customer = tga.add_user("Olha")
    tga.customer_writes(NUMBER, customer["id"], "Перше, поки працює перший")
    wait_for(lambda: len(received(planfix)) == 1, timeout=20)
    assert len(tga.calls("connect")) == connects            # the second connected nothing
    assert db.scalar("SELECT holder FROM leases WHERE name = 'tg-accounts'") == holder
    relay.accounts.kill()                                   # the first host is gone
    tga.customer_writes(NUMBER, customer["id"], "Друге, після його смерті")
    wait_for(lambda: len(received(planfix)) == 2, timeout=60)
    assert received(planfix)[1]["message"] == "Друге, після його смерті"
    assert db.scalar("SELECT holder FROM leases WHERE name = 'tg-accounts'") not in (None, holder)
    assert standby.process.poll() is None


def test_a_customer_and_planfix_talk_through_the_account(relay, tga, planfix, tmp_path, db):
    token = start_account(relay, tga, planfix, tmp_path)
    customer = tga.add_user("Ivan", last_name="Petrenko", username="ivan_p", phone="+380671234567")
    tga.customer_writes(NUMBER, customer["id"], "Доброго дня! Є в наявності?")
    tga.customer_writes(NUMBER, customer["id"], "Ось фото", file={"name": "item.png", "mime": "image/png",
                                                                    "data": PHOTO})
    wait_for(lambda: len(received(planfix)) == 2, timeout=20)
    text, photo = received(planfix)
    assert text["message"] == "Доброго дня! Є в наявності?"
    assert (text["chatId"], text["contactId"]) == (str(customer["id"]), str(customer["id"]))
    assert (text["contactName"], text["contactLastName"], text["contactPhone"]) == ("Ivan", "Petrenko", "+380671234567")
    assert text["providerId"] == planfix.provider_id and "isEcho" not in text
    assert photo["attachments[name]"] == "item.png"
    assert photo["downloaded"][0]["data"] == PHOTO           # Planfix fetched the signed link
    # The link is short-lived and signed: altered, it opens nothing.
    forged = photo["attachments[url]"].replace("s=", "s=0")
    assert requests.get(forged, timeout=5).status_code == 403

    # Planfix answers: the customer receives it once, and Planfix hears "sent", then "read".
    answer = planfix.send(relay.listener_url, token=token, message="Так, є! Відправимо сьогодні.",
                          chat_id=text["chatId"], channel=NUMBER, message_id="pf-100")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"chatId": str(customer["id"]), "contactId": str(customer["id"])}
    wait_for(lambda: planfix.statuses("pf-100") == ["sent"], timeout=20)
    assert [m["text"] for m in tga.sent(NUMBER, to=customer["id"])] == ["Так, є! Відправимо сьогодні."]
    tga.customer_reads(NUMBER, customer["id"])
    wait_for(lambda: planfix.statuses("pf-100") == ["sent", "read"], timeout=20)

    # The same Planfix message again (Planfix retried): not sent twice.
    again = planfix.send(relay.listener_url, token=token, message="Так, є! Відправимо сьогодні.",
                         chat_id=text["chatId"], channel=NUMBER, message_id="pf-100")
    assert again.status_code == 200
    # The owner replies from their phone: Planfix gets it as the employee's echo.
    tga.owner_writes(NUMBER, customer["id"], "Я сам відповім, дякую!")
    wait_for(lambda: received(planfix, isEcho="true"), timeout=20)
    relay.idle()
    echoes = received(planfix, isEcho="true")
    assert [e["message"] for e in echoes] == ["Я сам відповім, дякую!"]
    assert len(received(planfix)) == 3        # what we sent for Planfix never came back as an echo
    assert len(tga.sent(NUMBER, to=customer["id"])) == 2


def test_first_message_with_only_a_phone_and_recipients_that_cannot_be_found(relay, tga, planfix, tmp_path):
    token = start_account(relay, tga, planfix, tmp_path)
    olga = tga.add_user("Olga", phone="+380991112233")
    answer = planfix.send(relay.listener_url, token=token, message="Ваше замовлення готове",
                          phone="+38 (099) 111-22-33", channel=NUMBER, message_id="pf-1")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"chatId": str(olga["id"]), "contactId": str(olga["id"])}
    wait_for(lambda: planfix.statuses("pf-1") == ["sent"], timeout=20)
    assert [m["text"] for m in tga.sent(NUMBER, to=olga["id"])] == ["Ваше замовлення готове"]
    # Her reply lands in the same Planfix chat.
    tga.customer_writes(NUMBER, olga["id"], "Дякую!")
    wait_for(lambda: received(planfix), timeout=20)
    assert received(planfix)[0]["chatId"] == str(olga["id"])

    # By username, when Planfix knows only that.
    petro = tga.add_user("Petro", username="petro_shop")
    by_name = planfix.send(relay.listener_url, token=token, message="Привіт", username="@petro_shop",
                           channel=NUMBER, message_id="pf-2")
    assert by_name.json()["contactId"] == str(petro["id"])

    # Nobody with that phone: a clear 404, nothing sent, nothing queued.
    nobody = planfix.send(relay.listener_url, token=token, message="?", phone="+380000000001",
                          channel=NUMBER, message_id="pf-3")
    assert (nobody.status_code, nobody.json()) == (404, {"error": "Recipient not found"})
    # Privacy settings refuse strangers: messageStatus error with the reason.
    private = tga.add_user("Private", username="private_one", privacy=True)
    refused = planfix.send(relay.listener_url, token=token, message="Hi", username="private_one",
                           channel=NUMBER, message_id="pf-4")
    assert refused.status_code == 200
    wait_for(lambda: planfix.statuses("pf-4") == ["error"], timeout=20)
    [report] = received(planfix, "messageStatus", messageId="pf-4")
    assert "PRIVACY" in report["messageStatusText"]          # the field Planfix shows
    assert report["errorText"] == report["messageStatusText"]
    assert tga.sent(NUMBER, to=private["id"]) == []
    # An employee's file from Planfix reaches the customer with its caption.
    invoice = planfix.add_file("invoice.pdf", b"%PDF-1.4 invoice", "application/pdf")
    with_file = planfix.send(relay.listener_url, token=token, message="Ваш рахунок", chat_id=str(olga["id"]),
                             channel=NUMBER, message_id="pf-6", attachments=[("invoice.pdf", invoice)])
    assert with_file.status_code == 200
    wait_for(lambda: planfix.statuses("pf-6") == ["sent"], timeout=20)
    last = tga.sent(NUMBER, to=olga["id"])[-1]
    assert (last["text"], last["file"]) == ("Ваш рахунок", {"name": "invoice.pdf", "mime": "application/pdf",
                                                             "size": len(b"%PDF-1.4 invoice")})
    # An attachment link that cannot be fetched: messageStatus error, nothing half-sent.
    broken = planfix.send(relay.listener_url, token=token, message="Рахунок", chat_id=str(olga["id"]),
                          channel=NUMBER, message_id="pf-5",
                          attachments=[("invoice.pdf", f"{planfix.url}/no-such-file")])
    assert broken.status_code == 200
    wait_for(lambda: planfix.statuses("pf-5") == ["error"], timeout=20)
    assert len(tga.sent(NUMBER, to=olga["id"])) == 2


def test_delete_stops_one_number_and_put_restarts_it_with_new_data(relay, tga, planfix, tmp_path, db):
    token = start_account(relay, tga, planfix, tmp_path)
    second = "380509998877"
    (tmp_path / "second.session").write_text(tga.add_account(second))
    body = account_body(planfix, tmp_path, number=second, session_name="second")
    assert clients(relay, "POST", body, PLANFIX_ADMIN_TOKEN).status_code == 200
    wait_for(lambda: status(relay, token, second) == "online", timeout=20)   # one client, two numbers

    assert clients(relay, "DELETE", {"name": "shop", "number": NUMBER}, token).json() == {"status": "offline"}
    wait_for(lambda: status(relay, token, NUMBER) == "offline", timeout=20)
    assert status(relay, token, second) == "online"                          # that number only

    # The owner logged out everywhere: the old session is revoked; PUT with a new one.
    tga.revoke(NUMBER)
    (tmp_path / "fresh.session").write_text(tga.new_session(NUMBER))
    fresh = account_body(planfix, tmp_path, session_name="fresh")
    assert clients(relay, "PUT", fresh, token).status_code == 403   # the session file is the admin's to name
    put = clients(relay, "PUT", fresh, PLANFIX_ADMIN_TOKEN)
    assert put.status_code == 200, put.text
    wait_for(lambda: status(relay, token, NUMBER) == "online", timeout=20)
    customer = tga.add_user("Anna")
    tga.customer_writes(NUMBER, customer["id"], "Ви працюєте?")
    wait_for(lambda: received(planfix, message="Ви працюєте?"), timeout=20)


def test_a_revoked_session_goes_offline_with_one_error_report(relay, tga, planfix, tmp_path, tg):
    token = start_account(relay, tga, planfix, tmp_path)
    tga.revoke(NUMBER)
    wait_for(lambda: status(relay, token) == "offline", timeout=20)
    relay.idle(timeout=20)
    reports = wait_for(lambda: [m for m in tg.messages(LOG_CHAT) if "revoked" in (m.get("text") or "")],
                       timeout=20)
    assert len(reports) == 1 and NUMBER in reports[0]["text"]
    # While offline, Planfix's message to a known chat is refused clearly, nothing stored.
    customer = tga.add_user("Late")
    answer = planfix.send(relay.listener_url, token=token, message="x", user_id=customer["id"],
                          channel=NUMBER, message_id="pf-9")
    assert answer.status_code == 503


def test_bad_management_and_webhook_calls_get_clear_errors(relay, tga, planfix, tmp_path, db):
    body = account_body(planfix, tmp_path)
    assert clients(relay, "POST", body, None).status_code == 401
    assert clients(relay, "POST", body, "wrong").status_code == 401
    bad = clients(relay, "POST", dict(body, number="not a phone"), PLANFIX_ADMIN_TOKEN)
    assert bad.status_code == 400 and "number" in bad.json()["error"]
    assert clients(relay, "POST", dict(body, url_planfix="ftp://x"), PLANFIX_ADMIN_TOKEN).status_code == 400
    assert db.scalar("SELECT COUNT(*) FROM tg_accounts") == 0
    token = start_account(relay, tga, planfix, tmp_path)
    assert clients(relay, "POST", body, PLANFIX_ADMIN_TOKEN).status_code == 409
    assert clients(relay, "GET", {"name": "shop", "number": NUMBER}, None).status_code == 401
    assert clients(relay, "GET", {"name": "shop", "number": NUMBER}, "wrong-token").status_code == 401
    assert clients(relay, "GET", {"name": "nobody", "number": NUMBER}, token).status_code == 404
    assert clients(relay, "DELETE", {"name": "shop", "number": "380000000000"}, token).status_code == 404
    assert clients(relay, "PUT", dict(body, name="nobody"), token).status_code == 404
    # Bearer works as well as Token.
    bearer = requests.get(f"{relay.listener_url}/planfix/clients", params={"name": "shop", "number": NUMBER},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer.json() == {"status": "online"}
    # Planfix's webhook: a wrong token, missing fields, JSON instead of a form.
    wrong = planfix.send(relay.listener_url, token="wrong", message="x", chat_id="1", channel=NUMBER)
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid token"})
    missing = planfix.send(relay.listener_url, token=token, message="x", channel=NUMBER)
    assert (missing.status_code, missing.json()) == (400, {"error": "Invalid parameters"})
    as_json = requests.post(f"{relay.listener_url}/planfix/webhook", json={"cmd": "newMessage"}, timeout=5)
    assert as_json.status_code == 400
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'pf_deliver'") == 0
    # Secrets are kept only sealed or hashed.
    row = db.fetchone("SELECT * FROM tg_accounts")
    assert planfix.token not in str(row) and token not in str(row)


def test_group_chats_service_account_and_planfix_bot_are_not_relayed(relay, tga, planfix, tmp_path):
    start_account(relay, tga, planfix, tmp_path)
    member = tga.add_user("Member")
    service = tga.add_user("Telegram", id=777000)
    bot = tga.add_user("Planfix", username="planfix_bot", bot=True)
    tga.customer_writes(NUMBER, member["id"], "in a group", group=-100500)
    tga.customer_writes(NUMBER, service["id"], "Login code: 12345")
    tga.customer_writes(NUMBER, bot["id"], "notification")
    tga.customer_writes(NUMBER, member["id"], "private")
    wait_for(lambda: received(planfix), timeout=20)
    relay.idle()
    assert [r["message"] for r in received(planfix)] == ["private"]


def test_desk_routing_both_a_manager_answers_and_planfix_sees_the_echo(both_relay, tga, planfix, tmp_path, tg, db):
    start_account(both_relay, tga, planfix, tmp_path)
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (701, 'olena', 'Olena', 'uk', 'manager')")
    customer = tga.add_user("Ivan", username="ivan_p")
    tga.customer_writes(NUMBER, customer["id"], "Коли доставка?")
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if "Коли доставка?" in (m.get("text") or "")],
                    timeout=20)[-1]
    wait_for(lambda: received(planfix, message="Коли доставка?"), timeout=20)
    assert "Telegram" in parse_html(post["text"])[0]
    [button] = [b for row in post["reply_markup"]["inline_keyboard"] for b in row]
    tg.user_presses_button(701, SHARED_CHAT, post["message_id"], button["callback_data"], username="olena")
    wait_for(lambda: any("Ви відповідаєте" in (m.get("text") or "") for m in tg.messages(701)), timeout=20)
    tg.user_sends_text(701, "Завтра до обіду")
    wait_for(lambda: [m["text"] for m in tga.sent(NUMBER, to=customer["id"])] == ["Завтра до обіду"], timeout=20)
    echo = wait_for(lambda: received(planfix, isEcho="true"), timeout=20)
    assert [e["message"] for e in echo] == ["Завтра до обіду"]
    both_relay.idle(timeout=20)
    assert len(tga.sent(NUMBER, to=customer["id"])) == 1


def test_a_flood_wait_is_waited_out_and_planfix_refusals_are_dead_letters(relay, tga, planfix, tmp_path, tg, db):
    token = start_account(relay, tga, planfix, tmp_path)
    customer = tga.add_user("Ivan")
    tga.customer_writes(NUMBER, customer["id"], "Привіт")
    wait_for(lambda: received(planfix), timeout=20)
    tga.flood(NUMBER, 2)
    answer = planfix.send(relay.listener_url, token=token, message="Після паузи", chat_id=str(customer["id"]),
                          channel=NUMBER, message_id="pf-flood")
    assert answer.status_code == 200
    wait_for(lambda: planfix.statuses("pf-flood") == ["sent"], timeout=30)      # not an error: waited out
    assert [m["text"] for m in tga.sent(NUMBER, to=customer["id"])] == ["Після паузи"]

    # Planfix refuses our token (401): a dead letter, reported with #ERROR, not retried forever.
    clients(relay, "PUT", dict(account_body(planfix, tmp_path), token_planfix="revoked-in-planfix"), token)
    wait_for(lambda: status(relay, token) == "online", timeout=20)
    tga.customer_writes(NUMBER, customer["id"], "Ви тут?")
    assert "Invalid token" in relayed_message_dead_letter(db, tg, LOG_CHAT, "Planfix refused newMessage")
    assert not received(planfix, message="Ви тут?")


# --- a session is its number's (only the admin says where a session file is) ----------------

VICTIM = "380671110000"
MALLORY = "380932220000"


def account_row(db, number):
    return db.fetchone("SELECT name_session, path_session, session_enc, status, last_error"
                       " FROM tg_accounts WHERE number = %s", (number,))


def refused_reports(tg, number):
    return [m for m in tg.messages(LOG_CHAT) if "refused" in (m.get("text") or "") and number in m["text"]]


def test_a_client_token_cannot_point_its_number_at_another_clients_session(relay, tga, planfix, tmp_path, db, tg):
    start_account(relay, tga, planfix, tmp_path, number=VICTIM, name="victim")   # main.session
    victim_session = (tmp_path / "main.session").read_text()
    (tmp_path / "mallory.session").write_text(tga.add_account(MALLORY))
    answer = clients(relay, "POST", account_body(planfix, tmp_path, name="mallory", number=MALLORY,
                                                 session_name="mallory"), PLANFIX_ADMIN_TOKEN)
    mallory = answer.json()["token"]
    wait_for(lambda: status(relay, mallory, MALLORY, "mallory") == "online", timeout=20)

    body = account_body(planfix, tmp_path, name="mallory", number=MALLORY)
    for attempt in (dict(body, name_session="main"),                        # the victim's file
                    dict(body, path_session=str(tmp_path), name_session="main"),
                    dict(body, path_session="../" + tmp_path.name, name_session="main"),
                    dict(body, path_session=str(tmp_path / "main.session"))):
        refused = clients(relay, "PUT", attempt, mallory)
        assert refused.status_code == 403, (attempt, refused.text)
    assert account_row(db, MALLORY)["name_session"] == "mallory"

    # A session string of the victim's, handed in with mallory's own token: it is the
    # victim's account, not MALLORY's — never run, reported.
    put = clients(relay, "PUT", dict(body, name_session="mallory", session=victim_session), mallory)
    assert put.status_code == 200
    wait_for(lambda: "another account" in (account_row(db, MALLORY)["last_error"] or ""), timeout=20)
    assert status(relay, mallory, MALLORY, "mallory") == "offline"
    wait_for(lambda: refused_reports(tg, MALLORY), timeout=20)
    customer = tga.add_user("Private")
    tga.customer_writes(VICTIM, customer["id"], "only for the victim")
    wait_for(lambda: received(planfix, message="only for the victim"), timeout=20)
    relay.idle()
    assert len(received(planfix, message="only for the victim")) == 1     # the victim's own relay, once
    assert len(tga.calls("connect")) == 3            # victim, mallory, the refused one once: not retried


def test_a_session_file_of_another_number_is_refused_and_reported(relay, tga, planfix, tmp_path, db, tg):
    (tmp_path / "victim.session").write_text(tga.add_account(VICTIM))   # nobody runs it here
    # The admin (or a mix-up) names another account's file for MALLORY.
    answer = clients(relay, "POST", account_body(planfix, tmp_path, name="mallory", number=MALLORY,
                                                 session_name="victim"), PLANFIX_ADMIN_TOKEN)
    assert answer.status_code == 200
    token = answer.json()["token"]
    wait_for(lambda: "another account" in (account_row(db, MALLORY)["last_error"] or ""), timeout=20)
    assert account_row(db, MALLORY)["status"] == "offline" and status(relay, token, MALLORY, "mallory") == "offline"
    reports = wait_for(lambda: refused_reports(tg, MALLORY), timeout=20)
    assert len(reports) == 1 and VICTIM not in reports[0]["text"]
    customer = tga.add_user("Private")
    tga.customer_writes(VICTIM, customer["id"], "not for mallory")
    relay.idle()
    time.sleep(1.5)
    assert received(planfix) == [] and tga.pending_updates(VICTIM) >= 1   # nothing read, nothing relayed
    # The admin corrects it: MALLORY's own session runs.
    (tmp_path / "mallory.session").write_text(tga.add_account(MALLORY))
    fixed = clients(relay, "PUT", account_body(planfix, tmp_path, name="mallory", number=MALLORY,
                                               session_name="mallory"), PLANFIX_ADMIN_TOKEN)
    assert fixed.status_code == 200
    wait_for(lambda: status(relay, token, MALLORY, "mallory") == "online", timeout=20)


def test_the_admin_sets_a_path_inside_the_sessions_folder_and_escapes_are_refused(
        relay, tga, planfix, tmp_path, tmp_path_factory, db, tg):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "main.session").write_text(tga.add_account(NUMBER))
    body = account_body(planfix, tmp_path)
    for path in ("../" + outside.name, str(outside), "shop/../../" + outside.name, "~/sessions"):
        refused = clients(relay, "POST", dict(body, path_session=path), PLANFIX_ADMIN_TOKEN)
        assert refused.status_code == 400 and "path_session" in refused.json()["error"], path
    assert db.scalar("SELECT COUNT(*) FROM tg_accounts") == 0

    # A symlink inside the folder that leads out: refused by the accounts process, reported.
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    token = clients(relay, "POST", dict(body, path_session="link"), PLANFIX_ADMIN_TOKEN).json()["token"]
    wait_for(lambda: "outside the sessions folder" in (account_row(db, NUMBER)["last_error"] or ""), timeout=20)
    wait_for(lambda: refused_reports(tg, NUMBER), timeout=20)
    assert status(relay, token) == "offline" and tga.calls("connect") == []

    # Inside the folder (a sub-folder of it): the admin's PUT runs it.
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "main.session").write_text((outside / "main.session").read_text())
    put = clients(relay, "PUT", dict(body, path_session="shop/"), PLANFIX_ADMIN_TOKEN)
    assert put.status_code == 200, put.text
    wait_for(lambda: status(relay, token) == "online", timeout=20)
    assert account_row(db, NUMBER)["path_session"] == "shop/"


def legacy_seal(key: str, plain: str) -> str:
    """A value as KeepDesk sealed it before its key was stretched: Fernet keyed with a bare
    SHA-256 of TG_ACCOUNTS_KEY."""
    import hashlib
    from cryptography.fernet import Fernet
    digest = hashlib.sha256(b"keepdesk-secretbox:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest)).encrypt(plain.encode()).decode()


def test_secrets_sealed_before_the_upgrade_still_open_and_are_sealed_again(
        planfix_settings, db, tg, crm, tga, planfix, accounts_env):
    from conftest import TG_ACCOUNTS_KEY
    from models.tgaccounts import AccountRepository
    from utils.secretbox import SecretBox, new_token, token_hash
    session = tga.add_account(NUMBER)
    old_token, old_session = legacy_seal(TG_ACCOUNTS_KEY, planfix.token), legacy_seal(TG_ACCOUNTS_KEY, session)
    token = new_token()
    AccountRepository(db).create(client_name="shop", number=NUMBER, url_planfix=planfix.url,
                                 token_planfix_enc=old_token, name_session="main", path_session=None,
                                 session_enc=old_session, token_hash=token_hash(token))
    desk = Desk(planfix_settings, db, tg, crm).start()
    try:
        desk.accounts = desk.start_accounts(accounts_env)      # the upgraded accounts process
        wait_for(lambda: status(desk, token) == "online", timeout=20)
        row = db.fetchone("SELECT token_planfix_enc, session_enc FROM tg_accounts WHERE number = %s", (NUMBER,))
        assert row["token_planfix_enc"].startswith("v2:") and row["session_enc"].startswith("v2:")
        box = SecretBox(TG_ACCOUNTS_KEY)
        assert (box.open(row["token_planfix_enc"]), box.open(row["session_enc"])) == (planfix.token, session)
        customer = tga.add_user("Upgraded")
        tga.customer_writes(NUMBER, customer["id"], "after the upgrade")
        wait_for(lambda: received(planfix, message="after the upgrade"), timeout=20)
    finally:
        desk.stop()
