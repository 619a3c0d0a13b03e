"""The playground's main path in a real Chromium (WEB.md §2): a marketplace buyer writes,
a manager takes the conversation with one click on the bot's button in the shared group,
answers in the private chat, and the buyer sees the answer — through the real KeepDesk
(doors, queue, workers, pyTelegramBotAPI, MariaDB) and the emulators' user sides."""
from __future__ import annotations

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from models.singleton import ProcessSingleton
from sandbox.demo import SHARED_CHAT

QUESTION = "Is the 16 GB version in stock?"
ANSWER = "Yes, 16 GB is in stock; we ship today."


@pytest.fixture
def playground(mariadb, schema, tmp_path):
    from sandbox.playground import build
    ProcessSingleton.reset_all()
    mariadb.create_database("keepdesk_playground", drop=True)
    stoppers: list = []
    try:
        game, server = build(mariadb.environment("keepdesk_playground"), 0, stoppers=stoppers,
                             workdir=str(tmp_path))
        yield game, server.url
    finally:
        for stop in stoppers:
            stop()
        ProcessSingleton.reset_all()


def until(browser, condition, timeout: float = 30):
    def safe(b):
        try:
            return condition(b)
        except StaleElementReferenceException:   # the page refreshed itself meanwhile
            return False
    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(safe)


def button(text: str):
    def find(browser):
        found = [b for b in browser.find_elements(By.CSS_SELECTOR, "#messages .tg-button")
                 if b.text.strip() == text]
        return found[-1] if found else False
    return find


def test_customer_writes_manager_takes_answers_customer_sees(browser, playground, artifacts, tmp_path):
    from test_panel_browser import png
    game, url = playground
    photo = tmp_path / "box.png"
    photo.write_bytes(png(8, 6))
    browser.get(url + "/")
    browser.find_element(By.ID, "buyer-text").send_keys(QUESTION)
    browser.find_element(By.CSS_SELECTOR, "#buyer input[type=file]").send_keys(str(photo))
    browser.find_element(By.ID, "buyer-send").click()

    # The shared group shows the buyer's message with "✍ Відповісти" (acting as Olena).
    until(browser, lambda b: QUESTION in b.find_element(By.ID, "messages").text)
    # ... with the buyer's photo, as Telegram shows it.
    until(browser, lambda b: [i for i in b.find_elements(By.CSS_SELECTOR, "#messages img.tg-photo")
                              if b.execute_script("return arguments[0].naturalWidth", i) == 8])
    until(browser, button("✍ Відповісти")).click()

    # Olena's private chat: the history and the writing prompt; she answers there.
    until(browser, lambda b: b.find_elements(By.ID, "chat-2002"))[0].click()
    until(browser, lambda b: "Ви відповідаєте" in b.find_element(By.ID, "messages").text)
    browser.find_element(By.ID, "tg-text").send_keys(ANSWER)
    browser.find_element(By.ID, "tg-send").click()

    # The buyer, on the left, sees the shop's answer in the order's thread.
    until(browser, lambda b: any(ANSWER in bubble.text for bubble in
                                 b.find_elements(By.CSS_SELECTOR, "#buyer .bubble.shop")))
    order = game.crm.messages(min(game.buyers))
    assert [m["message"] for m in order if m["seller"]] == [ANSWER]
    browser.save_screenshot(str(artifacts / "playground.png"))

    # The other customers reach the same shared group: WhatsApp, and a Telegram user
    # writing to the shop's own account (relayed by the accounts process).
    browser.find_element(By.ID, "chat-" + str(SHARED_CHAT)).click()
    browser.find_element(By.ID, "wa-text").send_keys("Можна записатися на завтра?")
    browser.find_element(By.ID, "wa-send").click()
    until(browser, lambda b: "Можна записатися на завтра?" in b.find_element(By.ID, "messages").text)
    until(browser, lambda b: b.find_elements(By.ID, "tgc-text"), timeout=60)[0].send_keys("Коли доставка?")
    browser.find_element(By.ID, "tgc-send").click()
    until(browser, lambda b: "Коли доставка?" in b.find_element(By.ID, "messages").text)
