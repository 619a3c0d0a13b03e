"""Telegram's side of logging in a user account, for the account emulator
(`sandbox/tgaccounts.py`): the QR login and the phone-code login with a cloud password,
as Telegram documents them (core.telegram.org/api/qr-login, /api/auth, /api/srp).

The emulator is not an MTProto server: like the rest of it, this speaks JSON over loopback
HTTP at the account-client seam (`channels/tgaccount/login.py` is the client). The steps
and their errors are Telegram's:

* a client first has an *unauthorised session* (an MTProto auth key: `POST /auth/session`);
  every later call names it (`X-Session`), and a login makes that very session the
  account's;
* QR: `auth.exportLoginToken` gives a token (shown as `tg://login?token=<base64url>`) that
  expires (`expires`, 30 s); an authorised device of the account calls
  `auth.acceptLoginToken` with it (`AUTH_TOKEN_EXPIRED`, `AUTH_TOKEN_INVALID`,
  `AUTH_TOKEN_ALREADY_ACCEPTED`); the next `exportLoginToken` of that session answers
  `loginTokenSuccess` — or `SESSION_PASSWORD_NEEDED` when the account has a cloud password;
* code: `auth.sendCode` (the code arrives in the account's Telegram app, from 777000),
  `auth.signIn` (`PHONE_CODE_INVALID`, `PHONE_CODE_EXPIRED`, `SESSION_PASSWORD_NEEDED`);
* cloud password: `account.getPassword` gives the SRP parameters (salt1, salt2, g, p, a
  fresh `srp_B` and `srp_id`), `auth.checkPassword` takes `A` and `M1` and is verified
  with SRP-6a against the verifier `v = g^x mod p` alone — the emulator never keeps the
  password (`PASSWORD_HASH_INVALID`, `SRP_ID_INVALID`).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field

# Telegram's 2048-bit safe prime and generator for the cloud password (core.telegram.org/api/srp).
P_HEX = ("C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F48198A0AA7C14058229493D22530F4DB"
         "FA336F6E0AC925139543AED44CCE7C3720FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F"
         "642477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4A4A695811051907E162753B56B0F"
         "6B410DBA74D8A84B2A14B3144E0EF1284754FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF"
         "5B9AE4E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F0D8115F635B105EE2E4E15D0"
         "4B2454BF6F4FADF034B10403119CD8E3B92FCC5B")
P = int(P_HEX, 16)
G = 3
QR_TTL = 30.0
CODE_TTL = 300.0


class AuthError(Exception):
    """An RPC error as Telegram names it, with its HTTP-like code (400, 401)."""

    def __init__(self, code: int, name: str) -> None:
        super().__init__(name)
        self.code = code
        self.name = name


def _h(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _pad(number: int) -> bytes:
    return number.to_bytes(256, "big")


def password_hash(password: str, salt1: bytes, salt2: bytes) -> int:
    """x = PH2(password, salt1, salt2) of core.telegram.org/api/srp."""
    def sh(data: bytes, salt: bytes) -> bytes:
        return _h(salt, data, salt)
    ph1 = sh(sh(password.encode(), salt1), salt2)
    return int.from_bytes(sh(hashlib.pbkdf2_hmac("sha512", ph1, salt1, 100000), salt2), "big")


@dataclass
class CloudPassword:
    salt1: bytes
    salt2: bytes
    verifier: int          # v = g^x mod p; the password itself is not kept
    hint: str | None = None

    @classmethod
    def of(cls, password: str, hint: str | None = None) -> "CloudPassword":
        salt1, salt2 = os.urandom(40), os.urandom(16)
        return cls(salt1, salt2, pow(G, password_hash(password, salt1, salt2), P), hint)


@dataclass
class SrpRound:
    """One account.getPassword answer: the server's secret b and public B."""
    srp_id: int
    b: int
    B: int


@dataclass
class LoginSession:
    """An MTProto auth key on its way to being an account's session."""
    key: str
    number: str | None = None           # the account once known (code sent / token accepted)
    authorised: bool = False
    needs_password: bool = False
    token: bytes | None = None
    token_expires: float = 0.0
    token_accepted: bool = False
    code: str | None = None
    code_hash: str | None = None
    code_expires: float = 0.0
    srp: SrpRound | None = None
    created: float = field(default_factory=time.time)


def srp_round(password: CloudPassword) -> SrpRound:
    k = int.from_bytes(_h(_pad(P), _pad(G)), "big")
    while True:
        b = int.from_bytes(os.urandom(256), "big")
        B = (k * password.verifier + pow(G, b, P)) % P
        if 0 < B < P:
            return SrpRound(secrets.randbits(63), b, B)


def srp_verify(password: CloudPassword, srp: SrpRound, A_bytes: bytes, M1: bytes) -> bool:
    """The client's proof (A, M1) against the verifier: S = (A · v^u)^b mod p, K = H(S),
    M1 = H(H(p) xor H(g) | H(salt1) | H(salt2) | A | B | K)."""
    A = int.from_bytes(A_bytes, "big")
    if not 1 < A < P - 1:
        return False
    A_pad, B_pad = _pad(A), _pad(srp.B)
    u = int.from_bytes(_h(A_pad, B_pad), "big")
    if u == 0:
        return False
    S = pow(A * pow(password.verifier, u, P) % P, srp.b, P)
    K = _h(_pad(S))
    hp, hg = _h(_pad(P)), _h(_pad(G))
    expected = _h(bytes(x ^ y for x, y in zip(hp, hg)), _h(password.salt1), _h(password.salt2),
                  A_pad, B_pad, K)
    return secrets.compare_digest(expected, M1)
