-- KeepDesk: a notice 1C asked for that WhatsApp could not deliver (no WhatsApp on the
-- phone, or the send finally failed) goes by SMS when an SMS provider is configured. The
-- same `wa_outbox` record carries it on: `channel` says which one it went (or goes) by,
-- and WhatsApp's own reason is kept beside it; its SMS batches are `wa_batches` too.
-- depends: 0009.outbox-attempts

ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS channel ENUM('whatsapp','sms') NOT NULL DEFAULT 'whatsapp' AFTER account;
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS wa_error_code INT NULL AFTER error;
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS wa_error VARCHAR(1024) NULL AFTER wa_error_code;
-- When it was queued for SMS: SMS batches collect from then, as WhatsApp's from created_at.
ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS sms_queued_at DATETIME(6) NULL AFTER sent_at;
-- The fallback's sweep (failed WhatsApp notices of the last hours) and SMS batches' heads.
ALTER TABLE wa_outbox ADD KEY IF NOT EXISTS ix_wa_outbox_channel (channel, status, created_at);
