"""Apply the versioned migrations (migrations/, yoyo) to the configured database (the CLI
points it at the local one under var/ when none is): `python -m bot migrate`, `make migrate`."""
from __future__ import annotations

import logging

from config import Settings
from models.db import Database, migrate

log = logging.getLogger(__name__)


def main(settings: Settings) -> int:
    db = Database(settings, pool_size=1)
    try:
        applied = migrate(db)
        print(f"database {settings.mysql_db}: "
              + (f"applied {', '.join(applied)}" if applied else "up to date, nothing to apply"))
    finally:
        db.close()
    return 0
