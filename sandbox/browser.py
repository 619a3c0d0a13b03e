"""A real Chromium for the browser tests: Debian's `chromium` and
`chromium-driver`, installed by `make test` when missing (apt-get as root; otherwise a
clear message), driven headless by Selenium through /usr/bin/chromedriver — no browser
download, no CDN."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class BrowserUnavailable(RuntimeError):
    pass


def installed() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def ensure_installed() -> None:
    """Install Debian's chromium and chromium-driver when missing (idempotent)."""
    if installed():
        return
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium",
               "chromium-driver"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise BrowserUnavailable("chromium and chromium-driver are not installed; install them "
                                     "with `apt-get install chromium chromium-driver` as root")
        command = ["sudo", "-n"] + command
        update = ["sudo", "-n", "apt-get", "update", "-qq"]
    else:
        update = ["apt-get", "update", "-qq"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(update, check=True, env=env)
        subprocess.run(command, check=True, env=env)
    except (subprocess.CalledProcessError, OSError) as exc:
        raise BrowserUnavailable(f"could not install chromium ({exc}); install `chromium` and "
                                 "`chromium-driver` from Debian's packages") from exc


def start(width: int = 1400, height: int = 1000):
    """A headless Chromium under Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-extensions", "--no-first-run", "--password-store=basic",
                 f"--window-size={width},{height}", "--lang=en-US"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver
