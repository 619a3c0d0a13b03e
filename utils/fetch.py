"""The one way KeepDesk downloads an address that came from outside (a Planfix attachment,
a CRM file link, a gateway's downloadUrl, a Devino content URL).

Such an address is the caller's choice, not ours: fetched blindly it reaches this machine
(`/metrics`, the database's HTTP neighbours), the LAN or a cloud metadata service, and the
bytes go back to whoever named it. So every download here:

* accepts only http and https, without user:password in the address;
* resolves the host itself and connects to the very address it checked (no second DNS
  answer between the check and the connection); an address that is loopback, private,
  link-local, multicast, reserved or unspecified (IPv4 or IPv6, IPv4-mapped, NAT64, 6to4
  and Teredo unwrapped) is refused before any connection — unless the address's exact
  origin (scheme + host + port) is one the operator configured (the CRM, the gateways,
  the emulators of a sandbox, FETCH_TRUSTED_ORIGINS): those may live on this machine;
* follows at most a few redirects itself, each one checked again like the first;
* sends the caller's credentials (headers) only while the address's origin is exactly the
  one they belong to — never to another host, port or scheme, never after a redirect away;
* reads at most `max_bytes` (streamed: it stops at the cap) within a connect timeout, a
  read timeout and an overall deadline; no proxy from the environment is used.

Why not a library: `requests-hardened` filters addresses, but its switches are global
(loopback allowed or not for every host) where KeepDesk needs "public, or exactly one of
the configured origins" — the sandbox emulators live on 127.0.0.1; `advocate` has not been
maintained since 2020. The guard here is one urllib3 connection class.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
DEADLINE = 60.0
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchError(Exception):
    """The download did not happen; `str()` says why, without the address's secrets."""


class Refused(FetchError):
    """Never fetched, and asking again will not change it: a forbidden address or scheme,
    too many redirects, a file over the cap."""


class TooLarge(Refused):
    """The file is over the cap: the download stopped there."""


class Unreachable(FetchError):
    """A network failure or a timeout: asking again later may work."""


@dataclass(frozen=True)
class Fetched:
    status: int
    data: bytes          # the body when status is 200, else b""
    mime: str            # Content-Type without parameters
    headers: dict


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) address, lower-cased, the default port filled
    in; None for anything else (another scheme, no host, a bad port)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host.rstrip("."), port or DEFAULT_PORTS[scheme]


def same_origin(url: str, base: str | None) -> bool:
    """The address lives exactly at `base`'s scheme + host + port (a prefix is not enough:
    `https://api.example.evil/` and `https://api.example@evil/` are other hosts)."""
    mine = origin(url)
    return mine is not None and base is not None and mine == origin(base) and not _userinfo(url)


def _userinfo(url: str) -> bool:
    try:
        return "@" in (urlsplit(url.strip()).netloc or "")
    except ValueError:
        return True


def public_address(address: str) -> bool:
    """The address is on the public internet (not this machine, a LAN, link-local,
    multicast, reserved, unspecified or documentation space)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            if not public_address(str(embedded)):
                return False
            if ip.ipv4_mapped:
                return True
    return ip.is_global and not (ip.is_multicast or ip.is_loopback or ip.is_link_local
                                 or ip.is_private or ip.is_reserved or ip.is_unspecified)


class Policy:
    """Which origins may be on a private address: exactly the ones the operator configured."""

    def __init__(self, trusted: Iterable[str | None] = ()) -> None:
        self.trusted = frozenset(o for o in (origin(u) for u in trusted if u) if o)

    def trusts(self, scheme: str, host: str, port: int) -> bool:
        return (scheme, host.lower().rstrip("."), port) in self.trusted

    def addresses(self, scheme: str, host: str, port: int) -> list[tuple]:
        """getaddrinfo's answers for the host, every one allowed; Refused otherwise."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Unreachable(f"the host {host!r} does not resolve") from exc
        if not infos:
            raise Unreachable(f"the host {host!r} does not resolve")
        if not self.trusts(scheme, host, port):
            for info in infos:
                if not public_address(info[4][0]):
                    raise Refused(f"the host {host!r} is not a public address ({info[4][0]})")
        return infos

    def check(self, url: str) -> tuple[str, str, int]:
        """The address may be fetched (scheme, no user:password, its host's addresses);
        its origin. Refused otherwise — nothing is connected to."""
        where = origin(url)
        if where is None:
            raise Refused("only http and https addresses are fetched")
        if _userinfo(url):
            raise Refused("an address with user:password is not fetched")
        self.addresses(*where)
        return where


class _Guarded:
    """A urllib3 connection that resolves its host, refuses a forbidden address and
    connects to exactly the address it checked."""
    policy: Policy
    scheme_name: str

    def _new_conn(self):  # noqa: D401 — urllib3's hook
        from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
        infos = self.policy.addresses(self.scheme_name, self.host, self.port)
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                if self.timeout is not None:
                    sock.settimeout(self.timeout)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.connect(address)
                return sock
            except socket.timeout as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                sock.close()
                error = exc
        raise NewConnectionError(self, f"failed to connect to {self.host}: {error}")


class Fetcher:
    """Downloads outside addresses under one policy (see the module's text)."""

    def __init__(self, trusted_origins: Iterable[str | None] = (), *, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT, deadline: float = DEADLINE,
                 max_redirects: int = MAX_REDIRECTS) -> None:
        self.policy = Policy(trusted_origins)
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.deadline, self.max_redirects = deadline, max_redirects

    def session(self) -> requests.Session:
        """A requests session whose every connection is guarded (one per thread: a
        session is not safe to share between threads)."""
        policy = self.policy
        http_conn = type("GuardedHTTPConnection", (_Guarded, HTTPConnection),
                         {"policy": policy, "scheme_name": "http"})
        https_conn = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection),
                          {"policy": policy, "scheme_name": "https"})
        pools = {"http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
                 "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})}

        class GuardedAdapter(HTTPAdapter):
            def init_poolmanager(self, *args, **kwargs):
                super().init_poolmanager(*args, **kwargs)
                self.poolmanager.pool_classes_by_scheme = pools

            def proxy_manager_for(self, *args, **kwargs):
                raise Refused("downloads do not go through a proxy")

        session = requests.Session()
        session.trust_env = False      # no proxy, no .netrc credentials from the environment
        session.mount("http://", GuardedAdapter())
        session.mount("https://", GuardedAdapter())
        return session

    def get(self, url: str, *, max_bytes: int, headers: dict | None = None,
            credentials_for: str | None = None, session: requests.Session | None = None,
            read_timeout: float | None = None) -> Fetched:
        """GET `url`: its status, and its body (at most `max_bytes`) when 200.

        `headers` (credentials) go only to an address of exactly `credentials_for`'s
        origin — on the first request and on any redirect alike; without
        `credentials_for` they go nowhere. Refused / Unreachable as the module says;
        another HTTP status is returned."""
        if session is None:
            with self.session() as own:
                return self.get(url, max_bytes=max_bytes, headers=headers, credentials_for=credentials_for,
                                session=own, read_timeout=read_timeout)
        started = time.monotonic()
        current = url
        for _ in range(self.max_redirects + 1):
            self.policy.check(current)
            sent = dict(headers or {}) if headers and same_origin(current, credentials_for) else {}
            try:
                with session.get(current, headers=sent, stream=True, allow_redirects=False,
                                 timeout=(self.connect_timeout, read_timeout or self.read_timeout)) as answer:
                    if answer.is_redirect and answer.headers.get("Location"):
                        current = urljoin(current, answer.headers["Location"])
                        continue
                    mime = (answer.headers.get("Content-Type") or "application/octet-stream").split(";")[0].strip()[:100]
                    if answer.status_code != 200:
                        return Fetched(answer.status_code, b"", mime, dict(answer.headers))
                    declared = answer.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise TooLarge(f"the file is over {max_bytes} bytes")
                    chunks, total = [], 0
                    while True:
                        # read1: whatever has arrived, so a byte-a-minute trickle still meets
                        # the deadline between two reads instead of filling a whole chunk.
                        try:
                            chunk = answer.raw.read1(CHUNK, decode_content=True)
                        except (urllib3.exceptions.HTTPError, OSError) as exc:
                            raise Unreachable(f"the download was cut off: {type(exc).__name__}") from None
                        if not chunk:
                            break
                        total += len(chunk)
                        if total > max_bytes:
                            raise TooLarge(f"the file is over {max_bytes} bytes")
                        if time.monotonic() - started > self.deadline:
                            raise Unreachable(f"the download took over {self.deadline:g} s")
                        chunks.append(chunk)
                    return Fetched(200, b"".join(chunks), mime, dict(answer.headers))
            except FetchError:
                raise
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise Unreachable(f"the download failed: {type(exc).__name__}") from None
            except requests.RequestException as exc:
                raise Refused(f"the address cannot be fetched: {type(exc).__name__}") from None
        raise Refused(f"more than {self.max_redirects} redirects")


def trusted_origins(settings) -> tuple[str, ...]:
    """The origins the operator configured: the only ones that may be on a private address.
    KeepDesk's own PUBLIC_URL is not one of them (its doors include /metrics)."""
    names = ("keeping_api_url", "keeping_web_url", "whatsapp_greenapi_url", "whatsapp_greenapi_media_url",
             "whatsapp_devino_url", "whatsapp_cloud_graph_url")
    found = [getattr(settings, name, None) for name in names]
    return tuple(u for u in [*found, *getattr(settings, "fetch_trusted_origins", ())] if u)


def for_settings(settings, **kwargs) -> Fetcher:
    return Fetcher(trusted_origins(settings), **kwargs)
