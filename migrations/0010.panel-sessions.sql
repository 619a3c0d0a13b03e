-- KeepDesk: panel sessions live on the server, and the login throttle counts attempts per
-- (login, client address) with a growing lock.
-- depends: 0008.panel

-- One logged-in browser. The cookie carries a random session id; only its SHA-256 is kept
-- here. A session ends when this row goes (logout, a new password, a ban or a demotion of
-- the panel user's Telegram person) or when it is idle or old past the configured limits.
CREATE TABLE IF NOT EXISTS panel_sessions (
    id_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    seen_at DATETIME(6) NOT NULL,
    KEY ix_panel_sessions_user (user_id),
    KEY ix_panel_sessions_seen (seen_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The throttle counts attempts (before the password is checked), not failures; a key that
-- reaches its limit is locked, each further lock twice as long (`strikes`).
DELETE FROM panel_throttle;
ALTER TABLE panel_throttle CHANGE COLUMN IF EXISTS failures attempts INT NOT NULL DEFAULT 0;
ALTER TABLE panel_throttle ADD COLUMN IF NOT EXISTS strikes INT NOT NULL DEFAULT 0 AFTER locked_until;

-- A panel login's Telegram person is looked up by id on every request.
ALTER TABLE panel_users ADD KEY IF NOT EXISTS ix_panel_users_tg (tg_id);
