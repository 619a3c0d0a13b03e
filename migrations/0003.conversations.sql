-- KeepDesk 4: a conversation is (channel, account, external id), whatever its source;
-- a message is keyed by its channel's own message id. Every KeepingCRM chat, message,
-- pin, Telegram post, manager's place and queued job moves over unchanged: a chat keeps
-- its number (conversations.id = the old id_i) and a message its id, so the buttons of
-- posts sent before the upgrade keep working.
-- depends: 0002.side-effects

CREATE TABLE conversations (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- Where the customer writes: keepingcrm | whatsapp | tgaccount (channels/).
    channel          VARCHAR(16)   NOT NULL,
    -- Which of the shop's accounts on that channel ('' when the shop has one).
    account          VARCHAR(64)   NOT NULL DEFAULT '',
    -- The conversation's id there: the CRM's id_i, the customer's phone, a Telegram user id.
    external_id      VARCHAR(128)  NOT NULL,
    -- What the conversation is about: the CRM's product, or the customer's name.
    title            VARCHAR(1024) NULL,
    customer_name    VARCHAR(255)  NULL,
    customer_email   VARCHAR(255)  NULL,
    customer_phone   VARCHAR(32)   NULL,
    customer_tg_id   BIGINT        NULL,
    last_date        DATETIME      NULL,
    -- When the customer last wrote (a channel's reply window counts from it).
    last_customer_at DATETIME(6)   NULL,
    cnt_msg          INT           NOT NULL DEFAULT 0,
    cnt_new          INT           NOT NULL DEFAULT 0,
    kind             ENUM('ordinary','task') NOT NULL DEFAULT 'ordinary',
    status           ENUM('new','in_work','done','archive') NOT NULL DEFAULT 'new',
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_conversations_source (channel, account, external_id),
    KEY ix_conversations_last_date (last_date),
    KEY ix_conversations_kind_status (kind, status),
    KEY ix_conversations_phone (customer_phone)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO conversations (id, channel, account, external_id, title, customer_email, last_date,
                           cnt_msg, cnt_new, kind, status, created_at, updated_at)
SELECT id_i, 'keepingcrm', '', CAST(id_i AS CHAR), product, email, last_date,
       cnt_msg, cnt_new, kind, status, created_at, updated_at
FROM chats;

RENAME TABLE messages TO messages_v3;

CREATE TABLE messages (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id  BIGINT       NOT NULL,
    -- The channel's own id of the message: stored once, however often it is fetched.
    external_id      VARCHAR(128) NOT NULL,
    direction        ENUM('client','shop') NOT NULL,
    text             MEDIUMTEXT   NULL,
    is_file          TINYINT(1)   NOT NULL DEFAULT 0,
    is_img           TINYINT(1)   NOT NULL DEFAULT 0,
    filename         VARCHAR(512) NULL,
    url              TEXT         NULL,
    preview          TEXT         NULL,
    date_written     DATETIME     NULL,
    date_seen        DATETIME     NULL,
    deleted          TINYINT(1)   NOT NULL DEFAULT 0,
    -- When the fan-out to the desk was queued; NULL = not yet announced.
    announced_at     DATETIME(6)  NULL,
    created_at       DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    UNIQUE KEY uq_messages_external (conversation_id, external_id),
    KEY ix_messages_conversation (conversation_id, id),
    KEY ix_messages_created (created_at),
    CONSTRAINT fk_messages_conversation FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO messages (id, conversation_id, external_id, direction, text, is_file, is_img,
                      filename, url, preview, date_written, date_seen, deleted, announced_at,
                      created_at)
SELECT id, id_i, CAST(id AS CHAR), direction, text, is_file, is_img, filename, url, preview,
       date_written, date_seen, deleted, announced_at, created_at
FROM messages_v3;

DROP TABLE messages_v3;
DROP TABLE chats;

ALTER TABLE tg_message_map
    CHANGE id_i conversation_id BIGINT NOT NULL,
    CHANGE crm_message_id message_id BIGINT NULL,
    RENAME INDEX ix_map_chat TO ix_map_conversation,
    RENAME INDEX ix_map_crm_message TO ix_map_message;

ALTER TABLE pins DROP INDEX uq_pins_one_active, DROP COLUMN active_id_i;

ALTER TABLE pins
    CHANGE id_i conversation_id BIGINT NOT NULL,
    RENAME INDEX ix_pins_chat TO ix_pins_conversation,
    ADD COLUMN active_conversation_id BIGINT
        AS (IF(state = 'ACTIVE', conversation_id, NULL)) PERSISTENT AFTER state,
    ADD UNIQUE KEY uq_pins_one_active (active_conversation_id);

ALTER TABLE manager_state CHANGE current_id_i conversation_id BIGINT NULL;

ALTER TABLE outbound
    CHANGE id_i conversation_id BIGINT NOT NULL,
    CHANGE crm_files remote_files TEXT NULL,
    -- The channel's id of the delivered message (e.g. a WhatsApp wamid), for its statuses.
    ADD COLUMN external_id VARCHAR(128) NULL AFTER remote_files,
    RENAME INDEX ix_outbound_chat TO ix_outbound_conversation,
    ADD KEY ix_outbound_external (external_id);

-- Queued work keeps its meaning: sends about a chat now name its conversation.
UPDATE jobs SET payload = JSON_REMOVE(JSON_SET(payload, '$.conversation_id',
                                               JSON_EXTRACT(payload, '$.id_i')), '$.id_i')
WHERE kind IN ('tg_send', 'crm_seen') AND JSON_EXISTS(payload, '$.id_i');

UPDATE jobs SET payload = JSON_REMOVE(JSON_SET(payload, '$.message_id',
                                               JSON_EXTRACT(payload, '$.crm_message_id')),
                                      '$.crm_message_id')
WHERE kind = 'tg_send' AND JSON_EXISTS(payload, '$.crm_message_id');

UPDATE jobs SET kind = 'mark_read' WHERE kind = 'crm_seen';
UPDATE jobs SET kind = 'deliver' WHERE kind = 'crm_deliver';

UPDATE schema_meta SET value = '4' WHERE name = 'version';
