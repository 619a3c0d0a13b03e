-- KeepDesk: an employee's Telegram account logged in from the panel (by QR code, or by
-- phone code and cloud password). The accounts process holds the login's conversation with
-- Telegram; the panel only writes this row (what the person typed, sealed) and reads it
-- (the QR code to show, the step reached). A login not finished by expires_at is refused.
-- depends: 0006.accounts

CREATE TABLE IF NOT EXISTS tg_logins (
    id                 BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- Random: the login's handle in the panel's URLs (the panel checks its user anyway).
    ref                CHAR(32)      NOT NULL,
    method             ENUM('qr','code') NOT NULL,
    -- Given for a code login; for a QR login, the account's own number once logged in.
    number             VARCHAR(32)   NULL,
    client_name        VARCHAR(128)  NOT NULL,
    url_planfix        VARCHAR(512)  NOT NULL,
    token_planfix_enc  TEXT          NOT NULL,
    state              ENUM('new','qr','code','password','done','failed','expired') NOT NULL DEFAULT 'new',
    -- The tg://login?token=… to show as a QR code, sealed; a new one as Telegram rotates it.
    qr_url_enc         TEXT          NULL,
    qr_expires         DATETIME(6)   NULL,
    -- The login code or cloud password typed in the panel, sealed, until the process takes it.
    answer_enc         TEXT          NULL,
    hint               VARCHAR(128)  NULL,
    message            VARCHAR(300)  NULL,
    -- The new account's client token (for Planfix's channel), sealed, shown once then cleared.
    client_token_enc   TEXT          NULL,
    -- The accounts process holding the login's client (tg_account_hosts.endpoint).
    held_by            VARCHAR(64)   NULL,
    started_by         VARCHAR(64)   NOT NULL,
    expires_at         DATETIME(6)   NOT NULL,
    created_at         DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at         DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_tg_logins_ref (ref),
    KEY ix_tg_logins_state (state, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
