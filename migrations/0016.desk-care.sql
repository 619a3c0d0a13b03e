-- KeepDesk: a customer is never left wondering. The shop's automatic messages to a
-- customer (the answer outside working hours, the request for a score), each decided by a
-- row whose key is unique: however many workers ingest the same message, one row and one
-- message exist per conversation and period. Auto-assignment per channel, and the scores.
-- depends: 0013.digest

-- kind: closed (outside working hours; period_key = when the shop opens) or score (the
-- request for a score; period_key = the local day). outbound_id: the message recorded for
-- delivery (NULL when nothing could be sent, e.g. WhatsApp's window closed, no template).
CREATE TABLE IF NOT EXISTS auto_replies (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT NOT NULL,
    kind ENUM('closed', 'score') NOT NULL,
    period_key VARCHAR(64) NOT NULL,
    language VARCHAR(8) NOT NULL DEFAULT 'uk',
    outbound_id BIGINT DEFAULT NULL,
    manager_id BIGINT DEFAULT NULL,
    created_at DATETIME(6) NOT NULL,
    answered_at DATETIME(6) DEFAULT NULL,
    UNIQUE KEY uq_auto_replies_period (conversation_id, kind, period_key),
    KEY ix_auto_replies_open (conversation_id, kind, answered_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A channel whose new conversations go to the manager on shift with the fewest open chats.
CREATE TABLE IF NOT EXISTS auto_assign (
    channel VARCHAR(32) NOT NULL PRIMARY KEY,
    enabled TINYINT(1) NOT NULL DEFAULT 0,
    last_manager_id BIGINT DEFAULT NULL,
    updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A customer's score (1-5) after a conversation was done, for the manager who held it.
CREATE TABLE IF NOT EXISTS scores (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    request_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL,
    channel VARCHAR(32) NOT NULL,
    manager_id BIGINT DEFAULT NULL,
    score TINYINT NOT NULL,
    comment TEXT DEFAULT NULL,
    scored_at DATETIME(6) NOT NULL,
    UNIQUE KEY uq_scores_request (request_id),
    KEY ix_scores_time (scored_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One customer across channels, by hand: two conversations linked (1) or kept apart (0)
-- whatever their phones and e-mails say; low_id < high_id.
CREATE TABLE IF NOT EXISTS customer_links (
    low_id BIGINT NOT NULL,
    high_id BIGINT NOT NULL,
    linked TINYINT(1) NOT NULL,
    by_manager BIGINT DEFAULT NULL,
    changed_at DATETIME(6) NOT NULL,
    PRIMARY KEY (low_id, high_id),
    KEY ix_customer_links_high (high_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
