-- KeepDesk's schema as the migrations leave it — for reading, not for applying.
-- The database is built and upgraded by the versioned migrations in migrations/
-- (`python -m bot migrate`); regenerate this file with `python -m bot schema > schema.sql`
-- (tests/test_schema.py fails while it differs from what the migrations make).

CREATE TABLE `album_parts` (
  `tg_chat_id` bigint(20) NOT NULL,
  `media_group_id` varchar(64) NOT NULL,
  `tg_message_id` bigint(20) NOT NULL,
  `conversation_id` bigint(20) NOT NULL,
  `manager_id` bigint(20) NOT NULL,
  `caption` text DEFAULT NULL,
  `attachment` text NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`tg_chat_id`,`media_group_id`,`tg_message_id`),
  KEY `ix_album_parts_created` (`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `api_tokens` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `name` varchar(64) NOT NULL,
  `token_hash` char(64) NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `last_used_at` datetime(6) DEFAULT NULL,
  `revoked_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_api_tokens_hash` (`token_hash`),
  KEY `ix_api_tokens_name` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `appointments` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `phone` varchar(20) NOT NULL,
  `account` varchar(64) NOT NULL,
  `outbox_id` bigint(20) NOT NULL,
  `doctor` varchar(255) NOT NULL,
  `date` varchar(64) NOT NULL,
  `time` varchar(64) NOT NULL,
  `state` enum('waiting','confirmed') NOT NULL DEFAULT 'waiting',
  `created_at` datetime(6) NOT NULL,
  `confirmed_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_appointments_phone` (`phone`,`id`),
  KEY `ix_appointments_state` (`state`,`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `auto_assign` (
  `channel` varchar(32) NOT NULL,
  `enabled` tinyint(1) NOT NULL DEFAULT 0,
  `last_manager_id` bigint(20) DEFAULT NULL,
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`channel`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `auto_replies` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) NOT NULL,
  `kind` enum('closed','score') NOT NULL,
  `period_key` varchar(64) NOT NULL,
  `language` varchar(8) NOT NULL DEFAULT 'uk',
  `outbound_id` bigint(20) DEFAULT NULL,
  `manager_id` bigint(20) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL,
  `answered_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_auto_replies_period` (`conversation_id`,`kind`,`period_key`),
  KEY `ix_auto_replies_open` (`conversation_id`,`kind`,`answered_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `canned_replies` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `title` varchar(64) NOT NULL,
  `text` text NOT NULL,
  `file_id` varchar(255) DEFAULT NULL,
  `file_kind` enum('photo','document') DEFAULT NULL,
  `file_name` varchar(255) DEFAULT NULL,
  `file_mime` varchar(127) DEFAULT NULL,
  `file_size` bigint(20) DEFAULT NULL,
  `created_by` bigint(20) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `deleted_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_canned_replies_live` (`deleted_at`,`title`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `chat_joins` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) NOT NULL,
  `pin_id` bigint(20) NOT NULL,
  `admin_id` bigint(20) NOT NULL,
  `joined_at` datetime(6) NOT NULL,
  `left_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_chat_joins` (`pin_id`,`admin_id`),
  KEY `ix_chat_joins_conversation` (`conversation_id`,`left_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `chat_notes` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) NOT NULL,
  `author_id` bigint(20) NOT NULL,
  `text` text NOT NULL,
  `after_message_id` bigint(20) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_chat_notes_conversation` (`conversation_id`,`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `conversations` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `channel` varchar(16) NOT NULL,
  `account` varchar(64) NOT NULL DEFAULT '',
  `external_id` varchar(128) NOT NULL,
  `title` varchar(1024) DEFAULT NULL,
  `customer_name` varchar(255) DEFAULT NULL,
  `customer_email` varchar(255) DEFAULT NULL,
  `customer_phone` varchar(32) DEFAULT NULL,
  `phone_tail` varchar(9) GENERATED ALWAYS AS (right(regexp_replace(`customer_phone`,'[^0-9]',''),9)) STORED,
  `customer_tg_id` bigint(20) DEFAULT NULL,
  `last_date` datetime DEFAULT NULL,
  `last_customer_at` datetime(6) DEFAULT NULL,
  `cnt_msg` int(11) NOT NULL DEFAULT 0,
  `cnt_new` int(11) NOT NULL DEFAULT 0,
  `kind` enum('ordinary','task') NOT NULL DEFAULT 'ordinary',
  `status` enum('new','in_work','done','archive') NOT NULL DEFAULT 'new',
  `status_changed_at` datetime(6) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_conversations_source` (`channel`,`account`,`external_id`),
  KEY `ix_conversations_last_date` (`last_date`),
  KEY `ix_conversations_kind_status` (`kind`,`status`),
  KEY `ix_conversations_phone` (`customer_phone`),
  KEY `ix_conversations_external` (`external_id`),
  KEY `ix_conversations_email` (`customer_email`),
  KEY `ix_conversations_phone_tail` (`phone_tail`),
  FULLTEXT KEY `ft_conversations_title` (`title`,`customer_name`,`customer_email`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `customer_links` (
  `low_id` bigint(20) NOT NULL,
  `high_id` bigint(20) NOT NULL,
  `linked` tinyint(1) NOT NULL,
  `by_manager` bigint(20) DEFAULT NULL,
  `changed_at` datetime(6) NOT NULL,
  PRIMARY KEY (`low_id`,`high_id`),
  KEY `ix_customer_links_high` (`high_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `delivery_statuses` (
  `conversation_id` bigint(20) NOT NULL,
  `external_id` varchar(128) NOT NULL,
  `status` enum('sent','delivered','read','failed') NOT NULL,
  `error_code` int(11) DEFAULT NULL,
  `error` varchar(1024) DEFAULT NULL,
  `status_at` datetime(6) NOT NULL,
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`conversation_id`,`external_id`),
  KEY `ix_delivery_statuses_external` (`external_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `desk_chores` (
  `name` varchar(64) NOT NULL,
  `last_run_at` datetime(6) NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `desk_shifts` (
  `tg_id` bigint(20) NOT NULL,
  `on_shift` tinyint(1) NOT NULL DEFAULT 1,
  `changed_at` datetime(6) NOT NULL,
  PRIMARY KEY (`tg_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `digests` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `period_key` varchar(64) NOT NULL,
  `since` datetime(6) NOT NULL,
  `until` datetime(6) NOT NULL,
  `status` enum('queued','sending','sent','unknown','failed') NOT NULL DEFAULT 'queued',
  `message_id` varchar(191) NOT NULL,
  `requested_by` varchar(64) DEFAULT NULL,
  `attempts` int(11) NOT NULL DEFAULT 0,
  `error` varchar(1024) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `attempted_at` datetime(6) DEFAULT NULL,
  `sent_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_digests_period` (`period_key`),
  KEY `ix_digests_created` (`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `error_causes` (
  `cause_hash` char(40) NOT NULL,
  `cause` varchar(255) NOT NULL,
  `last_detail` text DEFAULT NULL,
  `total` int(11) NOT NULL DEFAULT 0,
  `unreported` int(11) NOT NULL DEFAULT 0,
  `first_at` datetime(6) NOT NULL,
  `last_at` datetime(6) NOT NULL,
  `reported_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`cause_hash`),
  KEY `ix_error_causes_unreported` (`unreported`,`reported_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `jobs` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `queue` varchar(32) NOT NULL,
  `kind` varchar(32) NOT NULL,
  `dedupe_key` varchar(191) DEFAULT NULL,
  `lane` varchar(64) DEFAULT NULL,
  `seq` bigint(20) NOT NULL DEFAULT 0,
  `priority` tinyint(4) NOT NULL DEFAULT 0,
  `payload` mediumtext NOT NULL,
  `status` enum('pending','running','done','failed') NOT NULL DEFAULT 'pending',
  `rerun` tinyint(1) NOT NULL DEFAULT 0,
  `attempts` int(11) NOT NULL DEFAULT 0,
  `deferrals` int(11) NOT NULL DEFAULT 0,
  `run_after` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `lease_until` datetime(6) DEFAULT NULL,
  `worker` varchar(64) DEFAULT NULL,
  `last_error` text DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_jobs_dedupe` (`dedupe_key`),
  KEY `ix_jobs_claim` (`queue`,`status`,`priority` DESC,`run_after`),
  KEY `ix_jobs_lane` (`lane`,`status`,`seq`,`id`),
  KEY `ix_jobs_lease` (`status`,`lease_until`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `leases` (
  `name` varchar(64) NOT NULL,
  `holder` varchar(128) NOT NULL,
  `until` datetime(6) NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `manager_state` (
  `tg_id` bigint(20) NOT NULL,
  `conversation_id` bigint(20) DEFAULT NULL,
  `mode` varchar(32) DEFAULT NULL,
  `data` text DEFAULT NULL,
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`tg_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `messages` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) NOT NULL,
  `external_id` varchar(128) NOT NULL,
  `direction` enum('client','shop') NOT NULL,
  `text` mediumtext DEFAULT NULL,
  `is_file` tinyint(1) NOT NULL DEFAULT 0,
  `is_img` tinyint(1) NOT NULL DEFAULT 0,
  `filename` varchar(512) DEFAULT NULL,
  `url` text DEFAULT NULL,
  `preview` text DEFAULT NULL,
  `media_ref` varchar(2048) DEFAULT NULL,
  `date_written` datetime DEFAULT NULL,
  `date_seen` datetime DEFAULT NULL,
  `deleted` tinyint(1) NOT NULL DEFAULT 0,
  `announced_at` datetime(6) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_messages_external` (`conversation_id`,`external_id`),
  KEY `ix_messages_conversation` (`conversation_id`,`id`),
  KEY `ix_messages_created` (`created_at`),
  FULLTEXT KEY `ft_messages_text` (`text`),
  CONSTRAINT `fk_messages_conversation` FOREIGN KEY (`conversation_id`) REFERENCES `conversations` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `onec_requests` (
  `fingerprint` char(64) NOT NULL,
  `outbox_id` bigint(20) DEFAULT NULL,
  `last_at` datetime(6) NOT NULL,
  PRIMARY KEY (`fingerprint`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `order_context` (
  `conversation_id` bigint(20) NOT NULL,
  `data` text DEFAULT NULL,
  `fetched_at` datetime(6) NOT NULL,
  PRIMARY KEY (`conversation_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `outbound` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `dedupe_key` varchar(191) NOT NULL,
  `conversation_id` bigint(20) NOT NULL,
  `manager_id` bigint(20) NOT NULL,
  `tg_chat_id` bigint(20) NOT NULL,
  `tg_message_id` bigint(20) NOT NULL,
  `text` mediumtext NOT NULL,
  `attachment` text DEFAULT NULL,
  `template` text DEFAULT NULL,
  `remote_files` text DEFAULT NULL,
  `external_id` varchar(128) DEFAULT NULL,
  `after_message_id` bigint(20) DEFAULT NULL,
  `status` enum('queued','sent','refused','failed') NOT NULL DEFAULT 'queued',
  `attempted_at` datetime(6) DEFAULT NULL,
  `sent_at` datetime(6) DEFAULT NULL,
  `error` text DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_outbound_dedupe` (`dedupe_key`),
  KEY `ix_outbound_conversation` (`conversation_id`,`id`),
  KEY `ix_outbound_external` (`external_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `panel_sessions` (
  `id_hash` char(64) NOT NULL,
  `user_id` bigint(20) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `seen_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id_hash`),
  KEY `ix_panel_sessions_user` (`user_id`),
  KEY `ix_panel_sessions_seen` (`seen_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `panel_throttle` (
  `throttle_key` varchar(191) NOT NULL,
  `attempts` int(11) NOT NULL DEFAULT 0,
  `window_start` datetime(6) NOT NULL,
  `locked_until` datetime(6) DEFAULT NULL,
  `strikes` int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`throttle_key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `panel_users` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `login` varchar(64) NOT NULL,
  `password_hash` varchar(255) NOT NULL,
  `session_version` int(11) NOT NULL DEFAULT 1,
  `tg_id` bigint(20) DEFAULT NULL,
  `disabled` tinyint(1) NOT NULL DEFAULT 0,
  `language` varchar(8) DEFAULT NULL,
  `last_login_at` datetime(6) DEFAULT NULL,
  `setup_code_hash` char(64) DEFAULT NULL,
  `setup_expires` datetime(6) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_panel_users_login` (`login`),
  KEY `ix_panel_users_tg` (`tg_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `pins` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) NOT NULL,
  `manager_id` bigint(20) NOT NULL,
  `kind` enum('PIN','ACTIVATE_KEY') NOT NULL DEFAULT 'PIN',
  `state` enum('ACTIVE','UN_PIN','UN_ACTIVATE_KEY','DELETE_PIN') NOT NULL DEFAULT 'ACTIVE',
  `active_conversation_id` bigint(20) GENERATED ALWAYS AS (if(`state` = 'ACTIVE',`conversation_id`,NULL)) STORED,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `last_reply_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `ended_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_pins_one_active` (`active_conversation_id`),
  KEY `ix_pins_manager` (`manager_id`,`state`),
  KEY `ix_pins_conversation` (`conversation_id`),
  KEY `ix_pins_state_reply` (`state`,`last_reply_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `responses` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `conversation_id` bigint(20) NOT NULL,
  `channel` varchar(16) NOT NULL,
  `message_id` bigint(20) NOT NULL,
  `asked_at` datetime(6) NOT NULL,
  `answered_at` datetime(6) DEFAULT NULL,
  `answered_by` bigint(20) DEFAULT NULL,
  `remind_at` datetime(6) DEFAULT NULL,
  `takeback_at` datetime(6) DEFAULT NULL,
  `reminded_at` datetime(6) DEFAULT NULL,
  `taken_back_at` datetime(6) DEFAULT NULL,
  `taken_back_from` bigint(20) DEFAULT NULL,
  `open_conversation_id` bigint(20) GENERATED ALWAYS AS (if(`answered_at` is null,`conversation_id`,NULL)) STORED,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_responses_open` (`open_conversation_id`),
  KEY `ix_responses_remind` (`remind_at`),
  KEY `ix_responses_takeback` (`takeback_at`),
  KEY `ix_responses_asked` (`asked_at`),
  KEY `ix_responses_conversation` (`conversation_id`,`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `reviews` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `phone` varchar(20) NOT NULL,
  `account` varchar(64) NOT NULL,
  `outbox_id` bigint(20) NOT NULL,
  `name` varchar(255) NOT NULL,
  `date` varchar(64) DEFAULT NULL,
  `state` enum('score','text','done') NOT NULL DEFAULT 'score',
  `score` tinyint(4) DEFAULT NULL,
  `text` text DEFAULT NULL,
  `conversation_id` bigint(20) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL,
  `finished_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `ix_reviews_phone` (`phone`,`state`,`id`),
  KEY `ix_reviews_finished` (`finished_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `schema_meta` (
  `name` varchar(64) NOT NULL,
  `value` varchar(255) NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `scores` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `request_id` bigint(20) NOT NULL,
  `conversation_id` bigint(20) NOT NULL,
  `channel` varchar(32) NOT NULL,
  `manager_id` bigint(20) DEFAULT NULL,
  `score` tinyint(4) NOT NULL,
  `comment` text DEFAULT NULL,
  `scored_at` datetime(6) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_scores_request` (`request_id`),
  KEY `ix_scores_time` (`scored_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_accounts` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `client_name` varchar(128) NOT NULL,
  `number` varchar(32) NOT NULL,
  `url_planfix` varchar(512) NOT NULL,
  `token_planfix_enc` text NOT NULL,
  `name_session` varchar(128) NOT NULL,
  `path_session` varchar(1024) DEFAULT NULL,
  `session_enc` mediumtext DEFAULT NULL,
  `token_hash` char(64) NOT NULL,
  `desired` enum('running','stopped') NOT NULL DEFAULT 'running',
  `generation` int(11) NOT NULL DEFAULT 1,
  `status` enum('online','offline') NOT NULL DEFAULT 'offline',
  `status_generation` int(11) NOT NULL DEFAULT 0,
  `last_error` varchar(1000) DEFAULT NULL,
  `error_reported` varchar(200) DEFAULT NULL,
  `status_at` datetime(6) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_tg_accounts_number` (`number`),
  KEY `ix_tg_accounts_client` (`client_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_account_hosts` (
  `endpoint` varchar(64) NOT NULL,
  `seen_at` datetime(6) NOT NULL,
  PRIMARY KEY (`endpoint`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_contacts` (
  `account` varchar(32) NOT NULL,
  `tg_user_id` bigint(20) NOT NULL,
  `chat_id` varchar(128) NOT NULL,
  `username` varchar(64) DEFAULT NULL,
  `phone` varchar(32) DEFAULT NULL,
  `first_name` varchar(255) DEFAULT NULL,
  `last_name` varchar(255) DEFAULT NULL,
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`account`,`tg_user_id`),
  UNIQUE KEY `uq_tg_contacts_chat` (`account`,`chat_id`),
  KEY `ix_tg_contacts_username` (`account`,`username`),
  KEY `ix_tg_contacts_phone` (`account`,`phone`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_logins` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `ref` char(32) NOT NULL,
  `method` enum('qr','code') NOT NULL,
  `number` varchar(32) DEFAULT NULL,
  `client_name` varchar(128) NOT NULL,
  `url_planfix` varchar(512) NOT NULL,
  `token_planfix_enc` text NOT NULL,
  `state` enum('new','qr','code','password','done','failed','expired') NOT NULL DEFAULT 'new',
  `qr_url_enc` text DEFAULT NULL,
  `qr_expires` datetime(6) DEFAULT NULL,
  `answer_enc` text DEFAULT NULL,
  `hint` varchar(128) DEFAULT NULL,
  `message` varchar(300) DEFAULT NULL,
  `client_token_enc` text DEFAULT NULL,
  `held_by` varchar(64) DEFAULT NULL,
  `started_by` varchar(64) NOT NULL,
  `expires_at` datetime(6) NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_tg_logins_ref` (`ref`),
  KEY `ix_tg_logins_state` (`state`,`expires_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_media` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `account` varchar(32) NOT NULL,
  `tg_message_id` bigint(20) NOT NULL,
  `name` varchar(255) NOT NULL,
  `mime` varchar(128) NOT NULL,
  `size` int(11) NOT NULL,
  `data` longblob NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_tg_media_message` (`account`,`tg_message_id`),
  KEY `ix_tg_media_created` (`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_message_map` (
  `tg_chat_id` bigint(20) NOT NULL,
  `tg_message_id` bigint(20) NOT NULL,
  `conversation_id` bigint(20) NOT NULL,
  `message_id` bigint(20) DEFAULT NULL,
  `purpose` varchar(16) NOT NULL DEFAULT 'post',
  `html` mediumtext DEFAULT NULL,
  `notes` text DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`tg_chat_id`,`tg_message_id`),
  KEY `ix_map_conversation` (`conversation_id`),
  KEY `ix_map_message` (`message_id`),
  KEY `ix_map_created` (`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_rate` (
  `bucket` varchar(40) NOT NULL,
  `stamps` text NOT NULL,
  `blocked_until` double NOT NULL DEFAULT 0,
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`bucket`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `tg_sent` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `ref` varchar(191) NOT NULL,
  `account` varchar(32) NOT NULL,
  `peer_id` bigint(20) NOT NULL,
  `tg_message_id` bigint(20) NOT NULL,
  `origin` enum('planfix','desk') NOT NULL,
  `planfix_message_id` varchar(128) DEFAULT NULL,
  `read_at` datetime(6) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_tg_sent_ref` (`ref`),
  UNIQUE KEY `uq_tg_sent_message` (`account`,`tg_message_id`),
  KEY `ix_tg_sent_unread` (`account`,`peer_id`,`read_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `unsubscribed_phones` (
  `phone` varchar(20) NOT NULL,
  `account` varchar(64) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  PRIMARY KEY (`phone`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `users` (
  `tg_id` bigint(20) NOT NULL,
  `username` varchar(64) DEFAULT NULL,
  `first_name` varchar(255) DEFAULT NULL,
  `language` varchar(8) DEFAULT NULL,
  `role` enum('pending','manager','admin','banned') NOT NULL DEFAULT 'pending',
  `role_source` enum('default','bootstrap','admin') NOT NULL DEFAULT 'default',
  `reachable` tinyint(1) NOT NULL DEFAULT 1,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `updated_at` datetime(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
  PRIMARY KEY (`tg_id`),
  KEY `ix_users_role` (`role`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `wa_batches` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `account` varchar(64) NOT NULL,
  `leader_job` bigint(20) NOT NULL,
  `size` int(11) NOT NULL,
  `state` enum('claimed','sending','settled','unknown') NOT NULL DEFAULT 'claimed',
  `attempted_at` datetime(6) DEFAULT NULL,
  `settled_at` datetime(6) DEFAULT NULL,
  `error` varchar(1024) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`id`),
  KEY `ix_wa_batches_state` (`state`,`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `wa_files` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `account` varchar(64) NOT NULL,
  `name` varchar(255) NOT NULL,
  `mime` varchar(128) NOT NULL,
  `size` int(11) NOT NULL,
  `data` longblob NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`id`),
  KEY `ix_wa_files_created` (`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `wa_instances` (
  `account` varchar(64) NOT NULL,
  `state` varchar(32) NOT NULL,
  `since` datetime(6) NOT NULL,
  `checked_at` datetime(6) NOT NULL,
  `reported_state` varchar(32) DEFAULT NULL,
  PRIMARY KEY (`account`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `wa_outbox` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `account` varchar(64) NOT NULL,
  `channel` enum('whatsapp','sms') NOT NULL DEFAULT 'whatsapp',
  `phone` varchar(20) NOT NULL,
  `purpose` varchar(16) NOT NULL,
  `kind` varchar(16) NOT NULL,
  `body` mediumtext NOT NULL,
  `status` enum('queued','sent','failed','skipped','unknown') NOT NULL DEFAULT 'queued',
  `external_id` varchar(128) DEFAULT NULL,
  `conversation_id` bigint(20) DEFAULT NULL,
  `batch_id` bigint(20) DEFAULT NULL,
  `batch_pos` int(11) DEFAULT NULL,
  `error_code` int(11) DEFAULT NULL,
  `error` varchar(1024) DEFAULT NULL,
  `wa_error_code` int(11) DEFAULT NULL,
  `wa_error` varchar(1024) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  `sent_at` datetime(6) DEFAULT NULL,
  `sms_queued_at` datetime(6) DEFAULT NULL,
  `attempted_at` datetime(6) DEFAULT NULL,
  `confirm_by` datetime(6) DEFAULT NULL,
  `resends` tinyint(4) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `ix_wa_outbox_phone` (`phone`,`purpose`,`created_at`),
  KEY `ix_wa_outbox_external` (`external_id`),
  KEY `ix_wa_outbox_waiting` (`account`,`status`,`id`),
  KEY `ix_wa_outbox_confirm` (`status`,`confirm_by`),
  KEY `ix_wa_outbox_channel` (`channel`,`status`,`created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `wa_panel_accounts` (
  `instance` varchar(32) NOT NULL,
  `api_url` varchar(512) NOT NULL,
  `media_url` varchar(512) NOT NULL,
  `style` enum('path','bearer') NOT NULL DEFAULT 'path',
  `token_sealed` text NOT NULL,
  `webhook_sealed` text DEFAULT NULL,
  `receive` enum('webhook','poll') NOT NULL,
  `label` varchar(64) NOT NULL DEFAULT '',
  `added_by` varchar(64) NOT NULL,
  `configured_at` datetime(6) DEFAULT NULL,
  `configure_error` varchar(500) DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT current_timestamp(6),
  PRIMARY KEY (`instance`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `worker_bells` (
  `endpoint` varchar(64) NOT NULL,
  `seen_at` datetime(6) NOT NULL,
  `generation` smallint(6) DEFAULT NULL,
  PRIMARY KEY (`endpoint`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
