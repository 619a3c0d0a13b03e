"""Desks: where staff answer (CHANNELS.md §1). The Telegram desk is built in (`bot/`,
`handlers/`); external desks live here, one package each: `planfix/`."""
