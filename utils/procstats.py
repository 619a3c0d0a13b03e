"""Uptime and memory of KeepDesk's processes, read from /proc (Linux): this process, its
parent when that is the supervisor (`python -m bot run`), and the parent's children (the
doors' gunicorn masters and workers, the worker processes)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    name: str
    rss_bytes: int
    uptime_seconds: float


def _ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def _boot_time() -> float:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def read(pid: int) -> Process | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    started = _boot_time() + int(fields[19]) / _ticks()
    rss = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    words = [w.decode(errors="replace") for w in cmdline if w]
    name = " ".join(w for w in words[1:4] if not w.startswith("/"))[:80] or (words[0] if words else "?")
    return Process(pid, name, rss, max(0.0, time.time() - started))


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(p) for p in text)
    except OSError:
        pass
    return found


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2:].split()[1])


def keepdesk_processes() -> list[Process]:
    """Every process of this KeepDesk: under `python -m bot run` (the panel is a gunicorn
    worker two levels below it) the supervisor and everything it started; otherwise this
    process alone."""
    own = read(os.getpid())
    root, pid = None, os.getpid()
    for _ in range(3):
        pid = parent_of(pid)
        if not pid or pid <= 1:
            break
        process = read(pid)
        if process is not None and process.name.startswith("-m bot ") and (
                "run" in process.name or "polling" in process.name):
            root = process
            break
    if root is None:
        return [own] if own else []
    seen: list[Process] = [root]
    stack = children(root.pid)
    while stack and len(seen) < 64:
        pid = stack.pop()
        process = read(pid)
        if process is not None:
            seen.append(process)
            stack.extend(children(pid))
    return seen
