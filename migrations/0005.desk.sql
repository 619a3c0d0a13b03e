-- KeepDesk 5: a desk that never strands a customer (issue 14, SPEC §8): response times and
-- the SLA, shifts, admins joining a chat, internal notes, canned replies, albums, order
-- context, task status times, and the indexes that find a chat.
-- depends: 0003.conversations

-- Every time a customer waited for the shop: from their first unanswered message (its
-- time as the desk received it) to the first answer (a manager's, or one made outside the
-- desk, answered_by NULL). First-response time per manager and per channel is computed
-- from these rows (models/responses.py::ResponseRepository.report). An open row
-- (answered_at NULL) is a customer waiting: the SLA sweep finds the due ones through the
-- indexes on remind_at / takeback_at, which hold only what is still to do (set to NULL
-- once done), so its cost follows the number due, not the number of open chats.
CREATE TABLE IF NOT EXISTS responses (
    id                   BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id      BIGINT      NOT NULL,
    channel              VARCHAR(16) NOT NULL,
    -- The first customer message of the wait (messages.id).
    message_id           BIGINT      NOT NULL,
    asked_at             DATETIME(6) NOT NULL,
    answered_at          DATETIME(6) NULL,
    answered_by          BIGINT      NULL,
    -- Due times of the reminder and of the takeback, in working time (WORKING_HOURS, TZ).
    remind_at            DATETIME(6) NULL,
    takeback_at          DATETIME(6) NULL,
    reminded_at          DATETIME(6) NULL,
    taken_back_at        DATETIME(6) NULL,
    taken_back_from      BIGINT      NULL,
    open_conversation_id BIGINT AS (IF(answered_at IS NULL, conversation_id, NULL)) PERSISTENT,
    UNIQUE KEY uq_responses_open (open_conversation_id),
    KEY ix_responses_remind (remind_at),
    KEY ix_responses_takeback (takeback_at),
    KEY ix_responses_asked (asked_at),
    KEY ix_responses_conversation (conversation_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- On / off shift per manager; no row = on shift.
CREATE TABLE IF NOT EXISTS desk_shifts (
    tg_id       BIGINT      NOT NULL PRIMARY KEY,
    on_shift    TINYINT(1)  NOT NULL DEFAULT 1,
    changed_at  DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- An admin watching and answering beside the holder of one pin: the join ends with
-- that pin (expiry, transfer, release) or when the admin leaves.
CREATE TABLE IF NOT EXISTS chat_joins (
    id               BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id  BIGINT      NOT NULL,
    pin_id           BIGINT      NOT NULL,
    admin_id         BIGINT      NOT NULL,
    joined_at        DATETIME(6) NOT NULL,
    left_at          DATETIME(6) NULL,
    UNIQUE KEY uq_chat_joins (pin_id, admin_id),
    KEY ix_chat_joins_conversation (conversation_id, left_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Internal notes on a conversation: shown to colleagues on its card and in its history
-- (after the message that was newest when the note was written), never sent.
CREATE TABLE IF NOT EXISTS chat_notes (
    id               BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id  BIGINT      NOT NULL,
    author_id        BIGINT      NOT NULL,
    text             TEXT        NOT NULL,
    after_message_id BIGINT      NULL,
    created_at       DATETIME(6) NOT NULL,
    KEY ix_chat_notes_conversation (conversation_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Canned replies kept by admins: text with placeholders ({order}, {name} …), optionally a
-- photo or a file kept as its Telegram file_id. A deleted one is kept for history.
CREATE TABLE IF NOT EXISTS canned_replies (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title       VARCHAR(64)   NOT NULL,
    text        TEXT          NOT NULL,
    file_id     VARCHAR(255)  NULL,
    file_kind   ENUM('photo','document') NULL,
    file_name   VARCHAR(255)  NULL,
    file_mime   VARCHAR(127)  NULL,
    file_size   BIGINT        NULL,
    created_by  BIGINT        NOT NULL,
    created_at  DATETIME(6)   NOT NULL,
    deleted_at  DATETIME(6)   NULL,
    KEY ix_canned_replies_live (deleted_at, title)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The parts of a manager's album (Telegram sends one update per photo or file, sharing a
-- media_group_id) collected durably; one job sends them as one message.
CREATE TABLE IF NOT EXISTS album_parts (
    tg_chat_id       BIGINT       NOT NULL,
    media_group_id   VARCHAR(64)  NOT NULL,
    tg_message_id    BIGINT       NOT NULL,
    conversation_id  BIGINT       NOT NULL,
    manager_id       BIGINT       NOT NULL,
    caption          TEXT         NULL,
    attachment       TEXT         NOT NULL,
    created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (tg_chat_id, media_group_id, tg_message_id),
    KEY ix_album_parts_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What the channel says of the order behind a conversation (product, sum, status,
-- delivery), bounded at the border, refreshed in the background.
CREATE TABLE IF NOT EXISTS order_context (
    conversation_id  BIGINT      NOT NULL PRIMARY KEY,
    data             TEXT        NULL,
    fetched_at       DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- When a housekeeping chore last ran (the daily cleaning).
CREATE TABLE IF NOT EXISTS desk_chores (
    name         VARCHAR(64)  NOT NULL PRIMARY KEY,
    last_run_at  DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A task's status change time (done tasks stay on 📊 for a day); finding a chat by its
-- number at its source (whatever the channel and account), by e-mail
-- (prefix), by the last 9 digits of a phone, and by words of its title or of any message
-- (InnoDB FULLTEXT: the built-in parser splits words at non-letters, Cyrillic included).
ALTER TABLE conversations
    ADD COLUMN IF NOT EXISTS status_changed_at DATETIME(6) NULL AFTER status,
    ADD COLUMN IF NOT EXISTS phone_tail VARCHAR(9)
        AS (RIGHT(REGEXP_REPLACE(customer_phone, '[^0-9]', ''), 9)) PERSISTENT AFTER customer_phone,
    ADD KEY IF NOT EXISTS ix_conversations_external (external_id),
    ADD KEY IF NOT EXISTS ix_conversations_email (customer_email),
    ADD KEY IF NOT EXISTS ix_conversations_phone_tail (phone_tail),
    ADD FULLTEXT KEY IF NOT EXISTS ft_conversations_title (title, customer_name, customer_email);

ALTER TABLE messages ADD FULLTEXT KEY IF NOT EXISTS ft_messages_text (text);

-- schema_meta's version is left as it is: migrations of this release are numbered by
-- yoyo (_yoyo_migration), and the release's version is set once when they are merged.
