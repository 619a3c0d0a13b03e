-- KeepDesk: WhatsApp gateway accounts (Green-API-compatible) added by an owner in the
-- panel, beside the ones of the settings and WHATSAPP_NUMBERS_FILE. Their tokens are kept
-- only sealed (utils/secretbox.py, a key derived from SECRET_KEY): never shown again.
-- depends: 0010.panel-sessions

CREATE TABLE IF NOT EXISTS wa_panel_accounts (
    instance         VARCHAR(32)   NOT NULL PRIMARY KEY,   -- idInstance
    api_url          VARCHAR(512)  NOT NULL,
    media_url        VARCHAR(512)  NOT NULL,
    style            ENUM('path','bearer') NOT NULL DEFAULT 'path',
    token_sealed     TEXT          NOT NULL,               -- apiTokenInstance
    webhook_sealed   TEXT          NULL,                   -- the webhook token KeepDesk chose
    receive          ENUM('webhook','poll') NOT NULL,
    label            VARCHAR(64)   NOT NULL DEFAULT '',
    added_by         VARCHAR(64)   NOT NULL,
    -- What KeepDesk last set in the gateway (setSettings): NULL until it did.
    configured_at    DATETIME(6)   NULL,
    configure_error  VARCHAR(500)  NULL,
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
