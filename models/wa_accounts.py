"""The WhatsApp gateway accounts an owner added in the panel (migrations/0011): their
secrets are stored only sealed — this module never sees them in clear."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from models.repo import Repository


@dataclass(frozen=True)
class PanelAccountRow:
    instance: str
    api_url: str
    media_url: str
    style: str
    token_sealed: str = field(repr=False)
    webhook_sealed: str | None = field(repr=False)
    receive: str
    label: str
    added_by: str
    configured_at: datetime | None
    configure_error: str | None
    created_at: datetime


class PanelAccountRepository(Repository):
    def all(self) -> list[PanelAccountRow]:
        return [PanelAccountRow(**r) for r in
                self.db.fetchall("SELECT * FROM wa_panel_accounts ORDER BY created_at, instance")]

    def get(self, instance: str) -> PanelAccountRow | None:
        row = self.db.fetchone("SELECT * FROM wa_panel_accounts WHERE instance = %s", (instance,))
        return PanelAccountRow(**row) if row else None

    def add(self, instance: str, api_url: str, media_url: str, style: str, token_sealed: str,
            webhook_sealed: str | None, receive: str, label: str, added_by: str) -> bool:
        """False when the instance is there already (nothing changed)."""
        return self.db.execute(
            "INSERT IGNORE INTO wa_panel_accounts (instance, api_url, media_url, style, token_sealed,"
            " webhook_sealed, receive, label, added_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (instance, api_url, media_url, style, token_sealed, webhook_sealed, receive, label,
             added_by)) == 1

    def configured(self, instance: str, now: datetime, error: str | None) -> None:
        """What came of setting the instance up (setSettings): done, or why not."""
        self.db.execute("UPDATE wa_panel_accounts SET configured_at = IF(%s IS NULL, %s, configured_at),"
                        " configure_error = %s WHERE instance = %s",
                        (error, now, (error or None) and error[:500], instance))

    def set_receive(self, instance: str, receive: str, webhook_sealed: str | None) -> None:
        """Receive by webhook (with its sealed token) or by polling (none)."""
        self.db.execute("UPDATE wa_panel_accounts SET receive = %s, webhook_sealed = %s WHERE instance = %s",
                        (receive, webhook_sealed, instance))

    def remove(self, instance: str) -> bool:
        return self.db.execute("DELETE FROM wa_panel_accounts WHERE instance = %s", (instance,)) == 1

    def count(self) -> int:
        return int(self.db.scalar("SELECT COUNT(*) FROM wa_panel_accounts") or 0)
