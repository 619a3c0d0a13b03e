"""KeepDesk 4: a conversation is (channel, account, external id), whatever its source;
a message is keyed by its channel's own message id. Every KeepingCRM chat, message, pin,
Telegram post, manager's place and queued job moves over unchanged: a chat keeps its
number (conversations.id = the old id_i) and a message its id, so the buttons of posts
sent before the upgrade keep working.

MariaDB commits each of these statements on its own, so a run stopped half-way (a kill,
a lost connection) leaves some done and some not: each step says how to tell it is done,
and a run again does only the rest (the data steps are single statements, and INSERT
IGNORE adds nothing twice).
"""
from yoyo import step

__depends__ = {"0002.side-effects"}


def _count(cur, sql, args):
    cur.execute(sql, args)
    row = cur.fetchone()
    return list(row.values())[0] if isinstance(row, dict) else row[0]


def _table(cur, name):
    return _count(cur, "SELECT COUNT(*) FROM information_schema.TABLES"
                       " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (name,)) > 0


def _column(cur, table, name):
    return _count(cur, "SELECT COUNT(*) FROM information_schema.COLUMNS"
                       " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                  (table, name)) > 0


# (what the step does, whether it is still to do, its statement), in order.
STEPS = [
    ("conversations", lambda cur: True, """
        CREATE TABLE IF NOT EXISTS conversations (
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
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
    """),
    # Chats → conversations (before `chats` is dropped; a repeated run adds nothing).
    ("chats copied", lambda cur: _table(cur, "chats"), """
        INSERT IGNORE INTO conversations (id, channel, account, external_id, title, customer_email, last_date,
                                   cnt_msg, cnt_new, kind, status, created_at, updated_at)
        SELECT id_i, 'keepingcrm', '', CAST(id_i AS CHAR), product, email, last_date,
               cnt_msg, cnt_new, kind, status, created_at, updated_at
        FROM chats
    """),
    # The old messages table keeps its rows aside while the new one is made.
    ("old messages aside", lambda cur: _table(cur, "messages") and not _column(cur, "messages", "conversation_id")
     and not _table(cur, "messages_v3"), "RENAME TABLE messages TO messages_v3"),
    ("messages", lambda cur: True, """
        CREATE TABLE IF NOT EXISTS messages (
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
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
    """),
    ("messages copied", lambda cur: _table(cur, "messages_v3"), """
        INSERT IGNORE INTO messages (id, conversation_id, external_id, direction, text, is_file, is_img,
                              filename, url, preview, date_written, date_seen, deleted, announced_at,
                              created_at)
        SELECT id, id_i, CAST(id AS CHAR), direction, text, is_file, is_img, filename, url, preview,
               date_written, date_seen, deleted, announced_at, created_at
        FROM messages_v3
    """),
    ("old messages dropped", lambda cur: True, "DROP TABLE IF EXISTS messages_v3"),
    ("chats dropped", lambda cur: True, "DROP TABLE IF EXISTS chats"),
    ("post map", lambda cur: _column(cur, "tg_message_map", "id_i"), """
        ALTER TABLE tg_message_map
            CHANGE id_i conversation_id BIGINT NOT NULL,
            CHANGE crm_message_id message_id BIGINT NULL,
            RENAME INDEX ix_map_chat TO ix_map_conversation,
            RENAME INDEX ix_map_crm_message TO ix_map_message
    """),
    ("pins' old rule", lambda cur: _column(cur, "pins", "active_id_i"), """
        ALTER TABLE pins DROP INDEX uq_pins_one_active, DROP COLUMN active_id_i
    """),
    ("pins", lambda cur: _column(cur, "pins", "id_i"), """
        ALTER TABLE pins
            CHANGE id_i conversation_id BIGINT NOT NULL,
            RENAME INDEX ix_pins_chat TO ix_pins_conversation,
            ADD COLUMN active_conversation_id BIGINT
                AS (IF(state = 'ACTIVE', conversation_id, NULL)) PERSISTENT AFTER state,
            ADD UNIQUE KEY uq_pins_one_active (active_conversation_id)
    """),
    ("managers' places", lambda cur: _column(cur, "manager_state", "current_id_i"), """
        ALTER TABLE manager_state CHANGE current_id_i conversation_id BIGINT NULL
    """),
    ("answers", lambda cur: _column(cur, "outbound", "id_i"), """
        ALTER TABLE outbound
            CHANGE id_i conversation_id BIGINT NOT NULL,
            CHANGE crm_files remote_files TEXT NULL,
            -- The channel's id of the delivered message (e.g. a WhatsApp wamid), for its statuses.
            ADD COLUMN external_id VARCHAR(128) NULL AFTER remote_files,
            RENAME INDEX ix_outbound_chat TO ix_outbound_conversation,
            ADD KEY ix_outbound_external (external_id)
    """),
    # Queued work keeps its meaning: sends about a chat now name its conversation (each
    # UPDATE finds only what is still to change).
    ("queued sends name their conversation", lambda cur: True, """
        UPDATE jobs SET payload = JSON_REMOVE(JSON_SET(payload, '$.conversation_id',
                                                       JSON_EXTRACT(payload, '$.id_i')), '$.id_i')
        WHERE kind IN ('tg_send', 'crm_seen') AND JSON_EXISTS(payload, '$.id_i')
    """),
    ("queued sends name their message", lambda cur: True, """
        UPDATE jobs SET payload = JSON_REMOVE(JSON_SET(payload, '$.message_id',
                                                       JSON_EXTRACT(payload, '$.crm_message_id')),
                                              '$.crm_message_id')
        WHERE kind = 'tg_send' AND JSON_EXISTS(payload, '$.crm_message_id')
    """),
    ("queued kinds", lambda cur: True, "UPDATE jobs SET kind = 'mark_read' WHERE kind = 'crm_seen'"),
    ("queued answers", lambda cur: True, "UPDATE jobs SET kind = 'deliver' WHERE kind = 'crm_deliver'"),
    ("version", lambda cur: True, "UPDATE schema_meta SET value = '4' WHERE name = 'version'"),
]


def apply(conn):
    cur = conn.cursor()
    for _, to_do, statement in STEPS:
        if to_do(cur):
            cur.execute(statement)
            conn.commit()


steps = [step(apply)]
