"""Folders and files only KeepDesk's own OS account may read: 0700 folders, 0600 files.

A secret is written whole to a private temporary file (created 0600, never wider) and
linked into place, so nobody ever reads a half-written one and two processes starting
together agree on one value.
"""
from __future__ import annotations

import os
import secrets as random
import stat
from contextlib import contextmanager
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: str | os.PathLike, *, reach_group: int | None = None) -> Path:
    """Create `path` (and its parents) if need be and make it 0700, owned by us.

    `reach_group`: a group that may pass through the folder to a subfolder of its own
    (0710: no listing, no reading): the local database server's group when it runs as
    its own system user under a folder of ours.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    if reach_group is None:
        if stat.S_IMODE(folder.stat().st_mode) != FOLDER_MODE:
            folder.chmod(FOLDER_MODE)
    else:
        if folder.stat().st_gid != reach_group:
            os.chown(folder, -1, reach_group)
        folder.chmod(FOLDER_MODE | stat.S_IXGRP)
    return folder


def write_secret(path: str | os.PathLike, value: str) -> bool:
    """Write `value` to `path` (0600) unless the file exists; True if this call wrote it."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{random.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.link(temporary, target)
        return True
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)


def read_secret(path: str | os.PathLike, make=lambda: random.token_urlsafe(32)) -> str:
    """The secret kept in `path`, made with `make()` on first use; a file left wider than
    0600 by an older version is narrowed."""
    target = Path(path)
    if not target.exists():
        write_secret(target, make())
    if stat.S_IMODE(target.stat().st_mode) != FILE_MODE:
        target.chmod(FILE_MODE)
    value = target.read_text().strip()
    if not value:
        raise RuntimeError(f"{target} is empty; delete it to have a new secret made")
    return value


@contextmanager
def private_files():
    """Files created meanwhile are readable by their owner only (umask 077)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)
