"""Apply the versioned migrations (migrations/, yoyo) to the configured database (or the
local one under var/): `python -m bot migrate`, `make migrate`."""
from __future__ import annotations

import logging

from config import Settings
from models.db import Database, migrate

log = logging.getLogger(__name__)


def main(settings: Settings) -> int:
    server = None
    if settings.uses_local_mariadb:
        from models.mariadb import local_server, local_settings
        started_here = not local_server(settings).is_running()
        server, settings = local_settings(settings)
        server = server if started_here else None   # a running `make run` keeps its database
    db = Database(settings, pool_size=1)
    try:
        applied = migrate(db)
        print(f"database {settings.mysql_db}: "
              + (f"applied {', '.join(applied)}" if applied else "up to date, nothing to apply"))
    finally:
        db.close()
        if server is not None:
            server.stop()
    return 0
