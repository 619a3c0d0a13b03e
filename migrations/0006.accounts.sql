-- KeepDesk: the shop's own Telegram accounts, relayed to Planfix and to the desk (CHANNELS.md §5).
-- depends: 0003.conversations

-- One row per account number ("client" of the management endpoint /planfix/clients).
-- What the admin asked for (desired, generation) and what the accounts process reports
-- (status, status_generation, last_error) live side by side; secrets only encrypted
-- (Fernet, key TG_ACCOUNTS_KEY) or hashed.
CREATE TABLE IF NOT EXISTS tg_accounts (
    id                 BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    client_name        VARCHAR(128)  NOT NULL,
    number             VARCHAR(32)   NOT NULL,
    url_planfix        VARCHAR(512)  NOT NULL,
    token_planfix_enc  TEXT          NOT NULL,
    name_session       VARCHAR(128)  NOT NULL,
    path_session       VARCHAR(1024) NULL,
    session_enc        MEDIUMTEXT    NULL,
    -- sha256 of the client token (a random 256-bit value: a plain hash is enough).
    token_hash         CHAR(64)      NOT NULL,
    desired            ENUM('running','stopped') NOT NULL DEFAULT 'running',
    -- Bumped by every start / update: the process restarts the session on a new one.
    generation         INT           NOT NULL DEFAULT 1,
    status             ENUM('online','offline') NOT NULL DEFAULT 'offline',
    status_generation  INT           NOT NULL DEFAULT 0,
    last_error         VARCHAR(1000) NULL,
    -- The generation whose failure was reported with #ERROR (once per cause).
    error_reported     VARCHAR(200)  NULL,
    status_at          DATETIME(6)   NULL,
    created_at         DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at         DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_tg_accounts_number (number),
    KEY ix_tg_accounts_client (client_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Where the accounts process answers its loopback control calls (send, resolve, read).
CREATE TABLE IF NOT EXISTS tg_account_hosts (
    endpoint  VARCHAR(64)  NOT NULL PRIMARY KEY,
    seen_at   DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Telegram users an account talks to, and the chat id Planfix knows them by.
CREATE TABLE IF NOT EXISTS tg_contacts (
    account      VARCHAR(32)   NOT NULL,
    tg_user_id   BIGINT        NOT NULL,
    chat_id      VARCHAR(128)  NOT NULL,
    username     VARCHAR(64)   NULL,
    phone        VARCHAR(32)   NULL,
    first_name   VARCHAR(255)  NULL,
    last_name    VARCHAR(255)  NULL,
    updated_at   DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (account, tg_user_id),
    UNIQUE KEY uq_tg_contacts_chat (account, chat_id),
    KEY ix_tg_contacts_username (account, username),
    KEY ix_tg_contacts_phone (account, phone)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Messages an account sent on someone's behalf (Planfix, a desk manager): recorded the
-- moment Telegram gave their id, so a retry never sends twice, their outgoing event is
-- not relayed back, and a "read" can be told to Planfix.
CREATE TABLE IF NOT EXISTS tg_sent (
    id             BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ref            VARCHAR(191)  NOT NULL,
    account        VARCHAR(32)   NOT NULL,
    peer_id        BIGINT        NOT NULL,
    tg_message_id  BIGINT        NOT NULL,
    origin         ENUM('planfix','desk') NOT NULL,
    planfix_message_id VARCHAR(128) NULL,
    read_at        DATETIME(6)   NULL,
    created_at     DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_tg_sent_ref (ref),
    UNIQUE KEY uq_tg_sent_message (account, tg_message_id),
    KEY ix_tg_sent_unread (account, peer_id, read_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Files customers sent to an account, kept for Planfix (and the desk) to download
-- through short-lived signed links on the integrations door; purged with old messages.
CREATE TABLE IF NOT EXISTS tg_media (
    id             BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account        VARCHAR(32)   NOT NULL,
    tg_message_id  BIGINT        NOT NULL,
    name           VARCHAR(255)  NOT NULL,
    mime           VARCHAR(128)  NOT NULL,
    size           INT           NOT NULL,
    data           LONGBLOB      NOT NULL,
    created_at     DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_tg_media_message (account, tg_message_id),
    KEY ix_tg_media_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
