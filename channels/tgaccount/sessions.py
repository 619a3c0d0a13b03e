"""Where Telegram session files may be, and whose account a session is.

* **One folder** (TG_SESSIONS_DIR, default `sessions/`) holds every session file, 0600
  in a 0700 folder. A `path_session` is relative to it; the management endpoint refuses
  an absolute path or a `..` (`door_path`), and the accounts process resolves the file
  and refuses anything that lands outside the folder — a symlink out included
  (`session_file`) — before it opens it.
* **A session is its number's**: the account a session logs in as must be the number it
  was started for (`check_owner`, the account's own phone in E.164), or it never relays.
"""
from __future__ import annotations

import os
from pathlib import Path

from channels.tgaccount.account import SessionRevoked
from utils.private_files import FILE_MODE, private_folder

SUFFIX = ".session"


class SessionRefused(SessionRevoked):
    """The session cannot be used for this number (outside the sessions folder, or
    another account's): permanent, reported, never retried until the account changes."""


def door_path(raw: str) -> str:
    """A `path_session` as the management endpoint accepts it: relative to the sessions
    folder, no `..`; ValueError otherwise."""
    value = raw.strip()
    if "\x00" in value or "\\" in value:
        raise ValueError("path_session must be a plain path inside the sessions folder")
    if os.path.isabs(value) or value.startswith("~"):
        raise ValueError("path_session must be relative to the sessions folder (TG_SESSIONS_DIR)")
    if ".." in Path(value).parts:
        raise ValueError("path_session must not contain '..'")
    return value or "."


def session_file(folder: Path | str, path_session: str, name_session: str) -> str:
    """The session file's path (without ".session") of `path_session`/`name_session`,
    which must resolve inside `folder`; SessionRefused otherwise. A path ending in
    ".session" names the file itself."""
    root = os.path.realpath(folder)
    path = path_session
    if not path.endswith(SUFFIX):
        path = os.path.join(path, name_session)
    path = path.removesuffix(SUFFIX)
    full = path if os.path.isabs(path) else os.path.join(root, path)
    real = os.path.realpath(full + SUFFIX)
    if os.path.commonpath([root, real]) != root or real == root:
        raise SessionRefused("the session file is outside the sessions folder (TG_SESSIONS_DIR)")
    return real.removesuffix(SUFFIX)


def e164(phone: str | None) -> str | None:
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    return "+" + digits if digits else None


def check_owner(number: str, phone: str | None) -> None:
    """The session's own account (`phone`, from Telegram's get_me) is the number; else
    SessionRefused."""
    mine, expected = e164(phone), e164(number)
    if mine is None:
        raise SessionRefused(f"the session's account does not say its phone; it is not used for {expected}")
    if mine != expected:
        raise SessionRefused(f"the session belongs to another account, not {expected}")


def secure_folder(folder: Path | str, *, files: list[str] | None = None) -> None:
    """The sessions folder exists, 0700, and its files are 0600 (`files`: only those,
    for a folder that is not only sessions')."""
    private_folder(folder)
    paths = files if files is not None else [e.path for e in os.scandir(folder)]
    for path in paths:
        if os.path.isfile(path) and not os.path.islink(path):
            os.chmod(path, FILE_MODE)
