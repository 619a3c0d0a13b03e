"""Business APIs: systems that call KeepDesk (CHANNELS.md §1) — the 1C notifications and
gateway API (`apis/onec/`), served by the integrations door (`crm_listener.py`)."""
