-- KeepDesk: WhatsApp through gateway services — Green-API-compatible gateways and Devino
-- (issue 12; CHANNELS.md §4): several accounts each with its provider, batched sends,
-- instance states, files kept for a gateway.
-- depends: 0004.whatsapp

-- A gateway's download link of a customer's file can be long (signed storage URLs).
ALTER TABLE messages MODIFY media_ref VARCHAR(2048) NULL;

-- Devino batches: a message sent in a batch knows its batch and its place in it. `unknown`:
-- handed to the gateway, but the answer was lost — not sent again blindly: a status
-- callback that names it (callbackData) settles it; silence until `confirm_by` sends it
-- once more (`resends`), then it is a reported failure.
ALTER TABLE wa_outbox MODIFY status ENUM('queued','sent','failed','skipped','unknown') NOT NULL DEFAULT 'queued';
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS batch_id BIGINT NULL AFTER conversation_id;
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS batch_pos INT NULL AFTER batch_id;
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS confirm_by DATETIME(6) NULL AFTER sent_at;
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS resends TINYINT NOT NULL DEFAULT 0 AFTER confirm_by;
ALTER TABLE wa_outbox ADD KEY IF NOT EXISTS ix_wa_outbox_waiting (account, status, id);
ALTER TABLE wa_outbox ADD KEY IF NOT EXISTS ix_wa_outbox_confirm (status, confirm_by);

-- One call to a gateway carrying many messages: decided (claimed) in one transaction with
-- the jobs it folds in, attempted, then settled position by position.
CREATE TABLE IF NOT EXISTS wa_batches (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account          VARCHAR(64)   NOT NULL,
    leader_job       BIGINT        NOT NULL,
    size             INT           NOT NULL,
    state            ENUM('claimed','sending','settled','unknown') NOT NULL DEFAULT 'claimed',
    attempted_at     DATETIME(6)   NULL,
    settled_at       DATETIME(6)   NULL,
    error            VARCHAR(1024) NULL,
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY ix_wa_batches_state (state, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The state of a gateway's instance (Green-API's stateInstance) as last seen, shared by
-- every process: sends wait while it is not `authorized`; a bad state is reported once.
CREATE TABLE IF NOT EXISTS wa_instances (
    account          VARCHAR(64)   NOT NULL PRIMARY KEY,
    state            VARCHAR(32)   NOT NULL,
    since            DATETIME(6)   NOT NULL,
    checked_at       DATETIME(6)   NOT NULL,
    -- The bad state reported with #ERROR (once until the instance is authorized again).
    reported_state   VARCHAR(32)   NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Files KeepDesk sends through a gateway, kept until sent: Green-API takes them by upload
-- in the sending call itself; Devino fetches them from a short-lived signed link on the
-- integrations door (GET /whatsapp/files/<id>). Purged a few days after.
CREATE TABLE IF NOT EXISTS wa_files (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account          VARCHAR(64)   NOT NULL,
    name             VARCHAR(255)  NOT NULL,
    mime             VARCHAR(128)  NOT NULL,
    size             INT           NOT NULL,
    data             LONGBLOB      NOT NULL,
    created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    KEY ix_wa_files_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
