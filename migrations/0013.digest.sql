-- KeepDesk: the figures by e-mail. One row per digest decides who sends it: its
-- period_key is unique (a scheduled period, or one "Send now"), so however many workers
-- look, one row and one send job exist per period.
-- depends: 0010.panel-sessions

-- status: queued (nothing handed to the mail server yet) → sending (the message's data is
-- being handed over: the server may have it) → sent (the server accepted it, 250), or
-- unknown (a send was cut off after its data went out: not sent again by itself),
-- failed (the server refused it for good, 5xx).
CREATE TABLE IF NOT EXISTS digests (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    period_key VARCHAR(64) NOT NULL,
    since DATETIME(6) NOT NULL,
    until DATETIME(6) NOT NULL,
    status ENUM('queued', 'sending', 'sent', 'unknown', 'failed') NOT NULL DEFAULT 'queued',
    message_id VARCHAR(191) NOT NULL,
    requested_by VARCHAR(64) DEFAULT NULL,
    attempts INT NOT NULL DEFAULT 0,
    error VARCHAR(1024) DEFAULT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    attempted_at DATETIME(6) DEFAULT NULL,
    sent_at DATETIME(6) DEFAULT NULL,
    UNIQUE KEY uq_digests_period (period_key),
    KEY ix_digests_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
