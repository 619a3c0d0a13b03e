-- KeepDesk 3: every external side effect once, every failure visible, bad data at the
-- border (issue 9).
-- depends: 0001.baseline

-- A file URL with a long percent-encoded name runs to several KB: kept whole, as TEXT
-- (crm/client.py drops a URL longer than this rather than keep half a link).
ALTER TABLE messages MODIFY url TEXT NULL, MODIFY preview TEXT NULL;

-- Causes of failures reported to the log chat: one #ERROR post per cause per few
-- minutes, with the count of what happened in between (services/errors.py).
CREATE TABLE IF NOT EXISTS error_causes (
    cause_hash    CHAR(40)     NOT NULL PRIMARY KEY,
    cause         VARCHAR(255) NOT NULL,
    last_detail   TEXT         NULL,
    total         INT          NOT NULL DEFAULT 0,
    unreported    INT          NOT NULL DEFAULT 0,
    first_at      DATETIME(6)  NOT NULL,
    last_at       DATETIME(6)  NOT NULL,
    reported_at   DATETIME(6)  NULL,
    KEY ix_error_causes_unreported (unreported, reported_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A manager's message to a customer: recorded when it is decided (keyed by the Telegram
-- message it came from, so a re-delivered or re-run update records it once), then
-- delivered by one durable step that resumes where it stopped: files uploaded once,
-- the message sent once, the outcome kept.
CREATE TABLE IF NOT EXISTS outbound (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    dedupe_key       VARCHAR(191) NOT NULL,
    id_i             BIGINT       NOT NULL,
    manager_id       BIGINT       NOT NULL,
    tg_chat_id       BIGINT       NOT NULL,
    tg_message_id    BIGINT       NOT NULL,
    text             MEDIUMTEXT   NOT NULL,
    -- The Telegram file to attach: {"file_id", "name", "mime", "size"}; NULL for text.
    attachment       TEXT         NULL,
    -- What the CRM gave for the uploaded file(s): the upload is not repeated.
    crm_files        TEXT         NULL,
    -- The newest message id we knew when the answer was decided: after an attempt whose
    -- outcome is unknown, a shop message with this text after it means "sent".
    after_message_id BIGINT       NULL,
    status           ENUM('queued','sent','refused','failed') NOT NULL DEFAULT 'queued',
    attempted_at     DATETIME(6)  NULL,
    sent_at          DATETIME(6)  NULL,
    error            TEXT         NULL,
    created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_outbound_dedupe (dedupe_key),
    KEY ix_outbound_chat (id_i, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Who set a person's role: a bootstrap admin (ADMIN_IDS) demoted by another admin stays
-- demoted; only a role never set by an admin follows ADMIN_IDS.
ALTER TABLE users ADD COLUMN IF NOT EXISTS
    role_source ENUM('default','bootstrap','admin') NOT NULL DEFAULT 'default' AFTER role;

UPDATE schema_meta SET value = '3' WHERE name = 'version';
