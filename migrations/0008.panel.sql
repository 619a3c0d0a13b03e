-- KeepDesk 8: the admin panel (issue 15, WEB.md §1): its users and the login throttle.
-- depends: 0005.desk

-- A person who may log in to the panel (password_hash '!': none set yet). `session_version` is part of every session: a
-- password change (or a forced log-out) bumps it, and every older session stops working.
CREATE TABLE IF NOT EXISTS panel_users (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    login VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    session_version INT NOT NULL DEFAULT 1,
    tg_id BIGINT NULL,
    disabled TINYINT(1) NOT NULL DEFAULT 0,
    last_login_at DATETIME(6) NULL,
    -- `/web_access` in Telegram: a one-time code (its SHA-256 only) that sets a password.
    setup_code_hash CHAR(64) NULL,
    setup_expires DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_panel_users_login (login)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Failed logins per key ("login:<name>" or "ip:<address>") in the current window; shared
-- by every gunicorn worker, so throttling holds whichever worker answers.
CREATE TABLE IF NOT EXISTS panel_throttle (
    throttle_key VARCHAR(191) NOT NULL PRIMARY KEY,
    failures INT NOT NULL DEFAULT 0,
    window_start DATETIME(6) NOT NULL,
    locked_until DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
