-- KeepDesk: several app hosts. Leases decided by replicated rows (a Galera cluster has no
-- shared lock server): the one process that may hold something — the Telegram accounts'
-- sessions, a chat's lock (models/locks.py) — holds its row until `until`, renewing it;
-- when it dies another takes it over.
-- And each worker says which generation of workers it is, so that during a rolling
-- upgrade a kind of periodic job the older ones cannot run is not stored before they go.
-- depends: 0010.panel-sessions

CREATE TABLE IF NOT EXISTS leases (
    name    VARCHAR(64)   NOT NULL PRIMARY KEY,
    holder  VARCHAR(128)  NOT NULL,
    until   DATETIME(6)   NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE worker_bells ADD COLUMN IF NOT EXISTS generation SMALLINT NULL;
