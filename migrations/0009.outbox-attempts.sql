-- KeepDesk: a WhatsApp message KeepDesk sends on its own (1C, the API) remembers when an
-- attempt to send it began, so that a retry after an answer that never came (a timeout, a
-- process killed) first asks the gateway whether it went out, instead of sending again.
-- depends: 0007.gateways

ALTER TABLE wa_outbox ADD COLUMN IF NOT EXISTS attempted_at DATETIME(6) NULL AFTER sent_at;
