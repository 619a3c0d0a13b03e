-- KeepDesk 5: WhatsApp customers in the desk (Cloud API), delivery statuses, the 24-hour
-- window's templates, and the 1C notifications API (issue 11; CHANNELS.md §2–3).
-- depends: 0003.conversations

-- A customer's photo or file the desk cannot link to (WhatsApp's media needs the number's
-- token): the channel's own reference, so the Telegram sender can ask the channel for it.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS media_ref VARCHAR(255) NULL AFTER preview;

-- A manager's answer may be an approved template (the 24-hour window was closed):
-- {"name", "language", "params": [...]}; NULL for an ordinary message.
ALTER TABLE outbound ADD COLUMN IF NOT EXISTS template TEXT NULL AFTER attachment;

-- What the channel says became of a message the shop sent (sent → delivered → read, or
-- failed with the channel's reason), keyed like the message itself. Kept apart from
-- `messages` because a status may arrive before the message is recorded.
CREATE TABLE IF NOT EXISTS delivery_statuses (
    conversation_id  BIGINT        NOT NULL,
    external_id      VARCHAR(128)  NOT NULL,
    status           ENUM('sent','delivered','read','failed') NOT NULL,
    error_code       INT           NULL,
    error            VARCHAR(1024) NULL,
    status_at        DATETIME(6)   NOT NULL,
    updated_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (conversation_id, external_id),
    KEY ix_delivery_statuses_external (external_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- WhatsApp messages KeepDesk sends on its own (1C notifications, /api/v1 messages, the
-- dialogue's short answers): recorded when decided, sent once by the `wa_send` job.
CREATE TABLE IF NOT EXISTS wa_outbox (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account          VARCHAR(64)   NOT NULL,
    -- The customer's phone in E.164 digits without "+" (WhatsApp's wa_id).
    phone            VARCHAR(20)   NOT NULL,
    -- appointment | review | birthday | custom | api | dialogue
    purpose          VARCHAR(16)   NOT NULL,
    -- template | text | image | document | location | contact
    kind             VARCHAR(16)   NOT NULL,
    body             MEDIUMTEXT    NOT NULL,
    status           ENUM('queued','sent','failed','skipped') NOT NULL DEFAULT 'queued',
    external_id      VARCHAR(128)  NULL,
    conversation_id  BIGINT        NULL,
    error_code       INT           NULL,
    error            VARCHAR(1024) NULL,
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    sent_at          DATETIME(6)   NULL,
    KEY ix_wa_outbox_phone (phone, purpose, created_at),
    KEY ix_wa_outbox_external (external_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- 1C retries: an identical request (or the same request_id) within the window is one send.
CREATE TABLE IF NOT EXISTS onec_requests (
    fingerprint      CHAR(64)      NOT NULL PRIMARY KEY,
    outbox_id        BIGINT        NULL,
    last_at          DATETIME(6)   NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Appointment notices waiting for the customer's Confirm (forgotten ONEC_EXPIRY_HOURS
-- after they were sent unless confirmed).
CREATE TABLE IF NOT EXISTS appointments (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    phone            VARCHAR(20)   NOT NULL,
    account          VARCHAR(64)   NOT NULL,
    outbox_id        BIGINT        NOT NULL,
    doctor           VARCHAR(255)  NOT NULL,
    date             VARCHAR(64)   NOT NULL,
    time             VARCHAR(64)   NOT NULL,
    state            ENUM('waiting','confirmed') NOT NULL DEFAULT 'waiting',
    created_at       DATETIME(6)   NOT NULL,
    confirmed_at     DATETIME(6)   NULL,
    KEY ix_appointments_phone (phone, id),
    KEY ix_appointments_state (state, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Phones that pressed Unsubscribe: no notification template is ever sent to them again.
CREATE TABLE IF NOT EXISTS unsubscribed_phones (
    phone            VARCHAR(20)   NOT NULL PRIMARY KEY,
    account          VARCHAR(64)   NOT NULL,
    created_at       DATETIME(6)   NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The review dialogue: asked for a score (0–5), then for a text; finished reviews are
-- kept for 1C, and a score of 3 or lower opens a desk conversation.
CREATE TABLE IF NOT EXISTS reviews (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    phone            VARCHAR(20)   NOT NULL,
    account          VARCHAR(64)   NOT NULL,
    outbox_id        BIGINT        NOT NULL,
    name             VARCHAR(255)  NOT NULL,
    date             VARCHAR(64)   NULL,
    state            ENUM('score','text','done') NOT NULL DEFAULT 'score',
    score            TINYINT       NULL,
    text             TEXT          NULL,
    conversation_id  BIGINT        NULL,
    created_at       DATETIME(6)   NOT NULL,
    finished_at      DATETIME(6)   NULL,
    KEY ix_reviews_phone (phone, state, id),
    KEY ix_reviews_finished (finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- 1C API tokens: only a SHA-256 of each (the tokens are 256-bit random values, so a fast
-- hash is as safe as a slow one, and a request costs one lookup); revoked ones are kept.
CREATE TABLE IF NOT EXISTS api_tokens (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name             VARCHAR(64)   NOT NULL,
    token_hash       CHAR(64)      NOT NULL,
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_used_at     DATETIME(6)   NULL,
    revoked_at       DATETIME(6)   NULL,
    UNIQUE KEY uq_api_tokens_hash (token_hash),
    KEY ix_api_tokens_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

