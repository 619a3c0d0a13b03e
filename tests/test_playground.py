"""`make run` on a fresh clone — no BOT_TOKEN, no .env — opens the playground (WEB.md §2),
walked in a real Chromium: `python -m bot run` as a process (its own MariaDB, the
emulators, the real KeepDesk), the terminal saying what it is and how to connect real
Telegram; a marketplace buyer writes with a photo, a manager takes the conversation with
one click on the bot's button in the shared group, answers in the private chat, and the
buyer sees the answer; the WhatsApp and Telegram customers reach the same group; Ctrl-C
stops everything."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, free_port, process_group_alive
from harness import wait_for
from sandbox.demo import SHARED_CHAT
from test_panel_browser import png

# One Chromium per test session: every browser test runs in the same xdist worker.
pytestmark = pytest.mark.xdist_group("browser")

QUESTION = "Is the 16 GB version in stock?"
ANSWER = "Yes, 16 GB is in stock; we ship today."


@pytest.fixture
def playground(tmp_path):
    env_file = ROOT / ".env"
    if env_file.is_file() and "BOT_TOKEN" in env_file.read_text():
        pytest.skip("this checkout has a .env with BOT_TOKEN: `make run` connects to Telegram here")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "BOT_TOKEN"))}
    env.update({"WEB_PORT": str(port), "PYTHONPATH": str(ROOT)})
    log = tmp_path / "run.log"
    out = open(log, "w")
    run = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=out,
                           stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def page():
            try:
                return requests.get(url + "/", timeout=2).text
            except requests.RequestException:
                return ""
        wait_for(lambda: "KeepDesk playground" in page(), timeout=120, interval=0.3)
        yield run, url, log
    finally:
        if process_group_alive(run.pid):
            # Ctrl-C first: the supervisor stops what it started in sessions of their own
            # (the local MariaDB, the accounts process), which a SIGKILL of the group
            # would leave running.
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if process_group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        out.close()
        print(log.read_text()[-3000:])


def until(browser, condition, timeout: float = 30):
    def safe(b):
        try:
            return condition(b)
        except StaleElementReferenceException:   # the page refreshed itself meanwhile
            return False
    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(safe)


def act(browser, find, do=lambda element: element.click(), timeout: float = 30):
    """Find and act as one step, again if the page re-rendered in between (an element
    found a moment ago may belong to the page before)."""
    def attempt(b):
        element = find(b)
        if not element:
            return False
        do(element)
        return True
    return until(browser, attempt, timeout)


def by_id(element_id: str):
    return lambda b: (b.find_elements(By.ID, element_id) or [False])[0]


def button(text: str):
    def find(browser):
        found = [b for b in browser.find_elements(By.CSS_SELECTOR, "#messages .tg-button")
                 if b.text.strip() == text]
        return found[-1] if found else False
    return find


def chat_text(browser) -> str:
    return browser.find_element(By.ID, "messages").text


@pytest.mark.slow
def test_make_run_without_a_token_is_the_playground_customer_to_manager_and_back(
        browser, playground, artifacts, tmp_path):
    run, url, log = playground
    said = log.read_text()
    assert "PLAYGROUND" in said and f"{url}/" in said
    assert "BOT_TOKEN" in said and ".env" in said           # how to connect real Telegram

    photo = tmp_path / "box.png"
    photo.write_bytes(png(8, 6))
    browser.get(url + "/")
    browser.find_element(By.ID, "buyer-text").send_keys(QUESTION)
    browser.find_element(By.CSS_SELECTOR, "#buyer input[type=file]").send_keys(str(photo))
    browser.find_element(By.ID, "buyer-send").click()

    # The shared group: the buyer's message and photo, with "✍ Відповісти" (acting as Olena).
    until(browser, lambda b: QUESTION in chat_text(b))
    until(browser, lambda b: [i for i in b.find_elements(By.CSS_SELECTOR, "#messages img.tg-photo")
                              if b.execute_script("return arguments[0].naturalWidth", i) == 8])
    act(browser, button("✍ Відповісти"))

    # Olena's private chat: the history and the writing prompt; she answers there.
    act(browser, by_id("chat-2002"))
    until(browser, lambda b: "Ви відповідаєте" in chat_text(b))
    browser.find_element(By.ID, "tg-text").send_keys(ANSWER)
    browser.find_element(By.ID, "tg-send").click()

    # The buyer, on the left, sees the shop's answer in the order's thread.
    until(browser, lambda b: any(ANSWER in bubble.text for bubble in
                                 b.find_elements(By.CSS_SELECTOR, "#buyer .bubble.shop")))
    browser.save_screenshot(str(artifacts / "playground.png"))

    # The other customers reach the same shared group: WhatsApp, and a Telegram user
    # writing to the shop's own account (relayed by the accounts process).
    act(browser, by_id(f"chat-{SHARED_CHAT}"))
    browser.find_element(By.ID, "wa-text").send_keys("Можна записатися на завтра?")
    browser.find_element(By.ID, "wa-send").click()
    until(browser, lambda b: "Можна записатися на завтра?" in chat_text(b))
    act(browser, by_id("tgc-text"), lambda field: field.send_keys("Коли доставка?"), timeout=60)
    browser.find_element(By.ID, "tgc-send").click()
    until(browser, lambda b: "Коли доставка?" in chat_text(b))

    # Its panel is there too; Ctrl-C stops everything.
    assert requests.get(f"{url}/panel/login", timeout=5).status_code == 200
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(timeout=60) == 0
    wait_for(lambda: not process_group_alive(run.pid), timeout=20)
