"""How doors and workers reach the accounts process (`python -m bot accounts`), which alone
holds the Telegram sessions: a small JSON interface on loopback, its address in the
database (`tg_account_hosts`, with a heartbeat), each call carrying a MAC derived from
TG_ACCOUNTS_KEY. Errors come back as the account interface's exceptions, so the failure
policy knows them: away / flood → transient; refused / not found → permanent.
"""
from __future__ import annotations

import base64

import requests

from channels.tgaccount.account import (AccountError, AccountOffline, FloodWait, NotFound, OutFile,
                                        Refused)
from models.tgaccounts import AccountHostRepository
from utils.secretbox import SecretBox

STALE_AFTER = 30.0
HEARTBEAT = 5.0
HEADER = "X-KeepDesk-Control"


def control_token(box: SecretBox) -> str:
    return box.mac("accounts-control", "v1")


class AccountsControl:
    def __init__(self, hosts: AccountHostRepository, box: SecretBox, *, timeout: float = 30.0) -> None:
        self.hosts = hosts
        self.box = box
        self.timeout = timeout

    def _call(self, path: str, body: dict, timeout: float | None = None) -> dict:
        endpoints = self.hosts.live(STALE_AFTER)
        if not endpoints:
            raise AccountOffline("the accounts process is not running (python -m bot accounts)")
        try:
            response = requests.post(f"http://{endpoints[0]}{path}", json=body,
                                     headers={HEADER: control_token(self.box)},
                                     timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise AccountOffline(f"accounts process unreachable: {type(exc).__name__}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code == 200:
            return data
        error = str(data.get("error") or f"HTTP {response.status_code}")[:300]
        if response.status_code == 429:
            raise FloodWait(float(data.get("retry_after") or 30))
        if response.status_code == 404:
            raise NotFound(error)
        if response.status_code == 422:
            raise Refused(error)
        if response.status_code == 503:
            raise AccountOffline(error)
        raise AccountError(error)

    def send(self, account: str, peer_id: int, text: str, files: list[OutFile], *, ref: str,
             origin: str, planfix_message_id: str | None = None) -> int:
        """Send through `account`; at most once per `ref` (a repeated ref answers the id
        of the message sent the first time)."""
        body = {"account": account, "peer_id": peer_id, "text": text, "ref": ref, "origin": origin,
                "planfix_message_id": planfix_message_id,
                "files": [{"name": f.name, "mime": f.mime, "data": base64.b64encode(f.data).decode()}
                          for f in files]}
        return int(self._call("/send", body)["id"])

    def resolve(self, account: str, *, user_id: int | None = None, username: str | None = None,
                phone: str | None = None, timeout: float | None = None) -> dict:
        """The contact (tg_user_id, chat_id, names…) found by id, then username, then phone."""
        return self._call("/resolve", {"account": account, "user_id": user_id, "username": username,
                                       "phone": phone}, timeout)["contact"]

    def mark_read(self, account: str, peer_id: int) -> None:
        self._call("/read", {"account": account, "peer_id": peer_id})

    def wake(self) -> None:
        """The desired state changed: look now (best effort; the process also polls)."""
        try:
            self._call("/wake", {}, timeout=2.0)
        except AccountError:
            pass
