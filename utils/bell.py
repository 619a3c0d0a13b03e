"""Waking idle workers the moment work is stored, instead of waiting for their next poll.

Workers poll the queue when idle, backing off to a fraction of a second: correct, but a
signal would wait up to that long. So the doors ring a bell after storing a job:

* `Bell` wakes the idle worker threads of one process;
* `BellListener` receives a one-byte UDP datagram on 127.0.0.1 for the worker process and
  rings its Bell; it registers its address in a registry (`models/bells.py`);
* `BellRinger` (in the doors) sends that datagram to every registered worker.

A lost datagram costs nothing but latency: the poll still finds the job.
"""
from __future__ import annotations

import collections
import logging
import socket
import threading
import time

from typing import Protocol

log = logging.getLogger(__name__)

STALE_AFTER = 90.0     # seconds without a heartbeat: a worker process is gone
HEARTBEAT = 30.0
RINGER_REFRESH = 2.0   # how often a door re-reads the list of workers


class Bell:
    """Wake-ups for the threads of one process, without lost wake-ups."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rings = 0
        # Ids of jobs just stored: the woken thread claims that job directly.
        self._hints: collections.deque[int] = collections.deque(maxlen=256)

    @property
    def rings(self) -> int:
        return self._rings

    def ring(self, hint: int | None = None) -> None:
        """One job arrived (`hint`: its id): one idle thread is enough (waking all would
        make them race for it and slow the winner down)."""
        with self._cond:
            self._rings += 1
            if hint is not None:
                self._hints.append(hint)
            self._cond.notify()

    def take_hint(self) -> int | None:
        with self._cond:
            return self._hints.popleft() if self._hints else None

    def ring_all(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> bool:
        """Sleep until a ring after `since` (a `rings` read before looking for work)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._rings != since, timeout)


class Registry(Protocol):
    def register(self, endpoint: str) -> None: ...
    def forget(self, endpoint: str) -> None: ...
    def live(self, stale_after: float) -> list[str]: ...


class BellListener:
    """The UDP ear of one worker process."""

    def __init__(self, registry: Registry, bell: Bell) -> None:
        self.registry = registry
        self.bell = bell
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.endpoint = "%s:%d" % self.sock.getsockname()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "BellListener":
        self._register()
        for target in (self._listen, self._heartbeat):
            thread = threading.Thread(target=target, daemon=True, name=f"bell-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        return self

    def _register(self) -> None:
        self.registry.register(self.endpoint)

    def _listen(self) -> None:
        self.sock.settimeout(1.0)
        while not self._stop.is_set():
            try:
                data = self.sock.recv(32)
            except socket.timeout:
                continue
            except OSError:
                return
            self.bell.ring(int(data) if data.isdigit() and len(data) < 20 else None)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                self._register()
            except Exception as exc:  # the database may be away for a while; keep trying
                log.warning("bell heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        try:
            self.registry.forget(self.endpoint)
        except Exception as exc:
            log.warning("could not deregister bell: %s", exc)
        self.sock.close()


class BellRinger:
    """Rings every live worker process after a door stored a job."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._endpoints: list[tuple[str, int]] = []
        self._read_at = 0.0
        self._lock = threading.Lock()

    def _targets(self) -> list[tuple[str, int]]:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at > RINGER_REFRESH:
                self._read_at = now
                try:
                    self._endpoints = [_address(e) for e in self.registry.live(STALE_AFTER)]
                except Exception as exc:  # ringing is an optimisation; never fail a request
                    log.debug("could not read bells: %s", exc)
            return list(self._endpoints)

    def ring(self, hint: int | None = None) -> None:
        """Wake every live worker process; `hint`: the id of the job just stored (the
        first to wake claims it directly, without looking for it)."""
        datagram = str(hint).encode() if hint is not None else b"!"
        for address in self._targets():
            try:
                self.sock.sendto(datagram, address)
            except OSError:
                pass  # a full buffer means the worker is being woken anyway


def _address(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.rsplit(":", 1)
    return host, int(port)
