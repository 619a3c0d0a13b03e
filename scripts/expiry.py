"""Pin expiry: a pin ends PIN_TTL_HOURS after its manager's last reply (SPEC §2).

Runs periodically; the sync also expires a chat's pin on the spot before fanning out, so
an expired pin never holds back a client message. A task whose pin expired after it was
done goes to the archive; one that was not done stays open and shows as ● in 📊.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from services.claims import ChatClaims

log = logging.getLogger(__name__)

EVERY_SECONDS = 60.0


class PinExpiry:
    def __init__(self, claims: ChatClaims, clock: Callable[[], datetime]) -> None:
        self.claims = claims
        self.clock = clock

    def __call__(self, job) -> float:
        self.run()
        return EVERY_SECONDS

    def run(self) -> int:
        expired = self.claims.expire_due(self.clock())
        if expired:
            log.info("expired %s pins", len(expired))
        return len(expired)
