"""WhatsApp providers: one module per wire format behind `base.Provider` — Meta's Cloud
API today (`cloud.py`); Green-API-compatible gateways and Devino plug in the same way."""
from channels.whatsapp.providers.base import (Event, Provider, ReceivedMessage,  # noqa: F401
                                              ReceivedStatus)
