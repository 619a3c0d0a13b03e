-- KeepDesk: the panel speaks Ukrainian and English; each panel user's choice is kept here
-- (NULL: not chosen, the shop's language — BOT_LANGUAGE, else Ukrainian). Safe to run again.
-- depends: 0010.panel-sessions

ALTER TABLE panel_users ADD COLUMN IF NOT EXISTS language VARCHAR(8) NULL DEFAULT NULL AFTER disabled;
