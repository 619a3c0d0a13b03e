"""Apply schema.sql to the configured database (or the local one under var/)."""
from __future__ import annotations

import logging

from config import Settings
from models.db import Database, migrate

log = logging.getLogger(__name__)


def main(settings: Settings) -> int:
    server = None
    if settings.uses_local_mariadb:
        from bot.runner import LOCAL_DB_NAME, local_database
        server, _ = local_database(settings)
        settings = settings.replace(mysql_socket=server.socket, mysql_user="root",
                                    mysql_password="", mysql_db=LOCAL_DB_NAME)
    db = Database(settings, pool_size=1)
    try:
        count = migrate(db)
        print(f"schema applied: {count} statements, database {settings.mysql_db}")
    finally:
        db.close()
        if server is not None:
            server.stop()
    return 0
