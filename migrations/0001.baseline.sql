-- KeepDesk 2 (the schema of the release before versioned migrations), as it was.
-- Every statement is idempotent: on a database that release created it changes
-- nothing, so an installed shop adopts the migrations without a step of its own; on an
-- empty database it creates everything.

CREATE TABLE IF NOT EXISTS users (
    tg_id         BIGINT       NOT NULL PRIMARY KEY,
    username      VARCHAR(64)  NULL,
    first_name    VARCHAR(255) NULL,
    language      VARCHAR(8)   NULL,
    role          ENUM('pending','manager','admin','banned') NOT NULL DEFAULT 'pending',
    -- 0 once Telegram said 403 (the user blocked the bot); set back to 1 by their /start.
    reachable     TINYINT(1)   NOT NULL DEFAULT 1,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    KEY ix_users_role (role)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Where a manager is in the desk: kept here, not in process memory, so any worker process
-- can serve the manager's next update.
CREATE TABLE IF NOT EXISTS manager_state (
    tg_id         BIGINT       NOT NULL PRIMARY KEY,
    current_id_i  BIGINT       NULL,
    mode          VARCHAR(32)  NULL,
    data          TEXT         NULL,
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One CRM conversation, keyed by the CRM's id_i (order / invoice number).
CREATE TABLE IF NOT EXISTS chats (
    id_i          BIGINT       NOT NULL PRIMARY KEY,
    email         VARCHAR(255) NULL,
    product       VARCHAR(1024) NULL,
    last_date     DATETIME     NULL,
    cnt_msg       INT          NOT NULL DEFAULT 0,
    cnt_new       INT          NOT NULL DEFAULT 0,
    kind          ENUM('ordinary','task') NOT NULL DEFAULT 'ordinary',
    status        ENUM('new','in_work','done','archive') NOT NULL DEFAULT 'new',
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    KEY ix_chats_last_date (last_date),
    KEY ix_chats_kind_status (kind, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One CRM message, keyed by the CRM message id: stored once however often it is fetched.
CREATE TABLE IF NOT EXISTS messages (
    id            BIGINT       NOT NULL PRIMARY KEY,
    id_i          BIGINT       NOT NULL,
    direction     ENUM('client','shop') NOT NULL,
    text          MEDIUMTEXT   NULL,
    is_file       TINYINT(1)   NOT NULL DEFAULT 0,
    is_img        TINYINT(1)   NOT NULL DEFAULT 0,
    filename      VARCHAR(512) NULL,
    url           VARCHAR(2048) NULL,
    preview       VARCHAR(2048) NULL,
    date_written  DATETIME     NULL,
    date_seen     DATETIME     NULL,
    deleted       TINYINT(1)   NOT NULL DEFAULT 0,
    -- When the fan-out to Telegram was queued; NULL = not yet announced.
    announced_at  DATETIME(6)  NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY ix_messages_chat (id_i, id),
    KEY ix_messages_created (created_at),
    CONSTRAINT fk_messages_chat FOREIGN KEY (id_i) REFERENCES chats (id_i) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every Telegram message the bot sent about a chat, so a manager's Telegram reply to it
-- reaches that chat and the bot can edit it later.
CREATE TABLE IF NOT EXISTS tg_message_map (
    tg_chat_id     BIGINT      NOT NULL,
    tg_message_id  BIGINT      NOT NULL,
    id_i           BIGINT      NOT NULL,
    crm_message_id BIGINT      NULL,
    purpose        VARCHAR(16) NOT NULL DEFAULT 'post',
    -- The HTML as sent, and notes added later (who took the chat, who tapped too), so
    -- the post can be edited without re-rendering it.
    html           MEDIUMTEXT  NULL,
    notes          TEXT        NULL,
    created_at     DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (tg_chat_id, tg_message_id),
    KEY ix_map_chat (id_i),
    KEY ix_map_crm_message (crm_message_id),
    KEY ix_map_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- "This chat is handled by this manager". At most one ACTIVE pin per chat is enforced by
-- the unique key on active_id_i, which is the chat id while active and NULL otherwise
-- (a unique index admits any number of NULLs), so it holds across processes and machines.
CREATE TABLE IF NOT EXISTS pins (
    id             BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    id_i           BIGINT      NOT NULL,
    manager_id     BIGINT      NOT NULL,
    kind           ENUM('PIN','ACTIVATE_KEY') NOT NULL DEFAULT 'PIN',
    state          ENUM('ACTIVE','UN_PIN','UN_ACTIVATE_KEY','DELETE_PIN') NOT NULL DEFAULT 'ACTIVE',
    active_id_i    BIGINT      AS (IF(state = 'ACTIVE', id_i, NULL)) PERSISTENT,
    created_at     DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_reply_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    ended_at       DATETIME(6) NULL,
    UNIQUE KEY uq_pins_one_active (active_id_i),
    KEY ix_pins_manager (manager_id, state),
    KEY ix_pins_chat (id_i),
    KEY ix_pins_state_reply (state, last_reply_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The durable work queue: incoming Telegram updates, CRM signals (one sync job per chat)
-- and outgoing sends. Workers claim with FOR UPDATE SKIP LOCKED and hold a lease; a job
-- whose lease ran out (its worker died) is claimable again. Jobs sharing a lane run one at
-- a time in (seq, id) order: that keeps the updates of one Telegram chat in order.
CREATE TABLE IF NOT EXISTS jobs (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue         VARCHAR(32)  NOT NULL,
    kind          VARCHAR(32)  NOT NULL,
    -- Idempotency: a Telegram update_id or "the sync of chat X" is stored once.
    dedupe_key    VARCHAR(191) NULL,
    lane          VARCHAR(64)  NULL,
    seq           BIGINT       NOT NULL DEFAULT 0,
    priority      TINYINT      NOT NULL DEFAULT 0,
    payload       MEDIUMTEXT   NOT NULL,
    status        ENUM('pending','running','done','failed') NOT NULL DEFAULT 'pending',
    -- A signal that arrived while the job was running: run it once more when it finishes.
    rerun         TINYINT(1)   NOT NULL DEFAULT 0,
    attempts      INT          NOT NULL DEFAULT 0,
    -- Times the job was put off without failing (no send budget yet, retry_after): these
    -- do not count as attempts, so they never lengthen the backoff after a real failure.
    deferrals     INT          NOT NULL DEFAULT 0,
    run_after     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    lease_until   DATETIME(6)  NULL,
    worker        VARCHAR(64)  NULL,
    last_error    TEXT         NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_jobs_dedupe (dedupe_key),
    -- Claims read due jobs of one queue in exactly this order: no sort, however long the queue.
    KEY ix_jobs_claim (queue, status, priority DESC, run_after),
    KEY ix_jobs_lane (lane, status, seq, id),
    KEY ix_jobs_lease (status, lease_until)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Which schema version this database carries (informational; statements above are
-- idempotent on their own).
CREATE TABLE IF NOT EXISTS schema_meta (
    name          VARCHAR(64)  NOT NULL PRIMARY KEY,
    value         VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO schema_meta (name, value) VALUES ('version', '2')
    ON DUPLICATE KEY UPDATE value = VALUES(value);

-- Telegram send budget, shared by every process: recent send times per bucket ("global",
-- "chat:<id>") and a block set by Telegram's retry_after. Rows are locked while a send
-- slot is reserved, so the limits hold across processes and machines.
CREATE TABLE IF NOT EXISTS tg_rate (
    bucket         VARCHAR(40)  NOT NULL PRIMARY KEY,
    stamps         TEXT         NOT NULL,
    blocked_until  DOUBLE       NOT NULL DEFAULT 0,
    updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO tg_rate (bucket, stamps) VALUES ('global', '');

-- Worker processes listening for a wake-up datagram (see utils/bell.py).
CREATE TABLE IF NOT EXISTS worker_bells (
    endpoint      VARCHAR(64)  NOT NULL PRIMARY KEY,
    seen_at       DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
