"""Report an error (SPEC §6, "Nothing fails silently").

Every failure that needs a person's eye — a dead letter, a periodic job failing again and
again, a manager who blocked the bot — is reported here. The log chat `CHANNEL_LOG` gets
`#ERROR` with the cause, at most one post per cause per `REPORT_WINDOW`; occurrences in
between are counted, and the next post (or the periodic flush) says how many there were.
The post itself is a durable send; a failure to post to the log chat is only logged, so a
broken log chat cannot feed on itself.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from models.db import Database
from models.errors import ErrorCauseRepository
from services.notices import Notice, Notices
from utils.clock import utc_now
from utils.redact import redact

log = logging.getLogger(__name__)

REPORT_WINDOW = timedelta(minutes=5)
FLUSH_EVERY_SECONDS = 60.0


class ErrorReporter:
    def __init__(self, db: Database, notices: Notices, log_chat_id: int | None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.notices = notices
        self.log_chat_id = log_chat_id
        self.clock = clock
        self.causes = ErrorCauseRepository(db)

    def report(self, cause: str, detail: str = "", *, job_id: int | None = None) -> bool:
        """Count `cause`; post `#ERROR` unless this cause was posted within the window.
        Returns True when a post was queued."""
        cause, detail = redact(cause), redact(detail)
        log.error("#ERROR %s: %s%s", cause, detail, f" (job {job_id})" if job_id else "")
        now = self.clock()
        with self.db.transaction() as cur:
            counted = self.causes.record(cur, cause, detail, now)
            if counted.reported_at is not None and counted.reported_at > now - REPORT_WINDOW:
                return False
            self._post(cur, cause, detail, counted.unreported, job_id)
            self.causes.mark_reported(cur, cause, now)
        return True

    def flush(self) -> int:
        """Say the counts not yet said (causes that went quiet within their window)."""
        now = self.clock()
        with self.db.transaction() as cur:
            pending = self.causes.unreported_since(cur, now - REPORT_WINDOW)
            for counted in pending:
                self._post(cur, counted.cause, counted.detail, counted.unreported, None)
                self.causes.mark_reported(cur, counted.cause, now)
        return len(pending)

    def __call__(self, job) -> float:
        """The periodic flush job ("report_errors")."""
        self.flush()
        return FLUSH_EVERY_SECONDS

    def _post(self, cur, cause: str, detail: str, count: int, job_id: int | None) -> None:
        if self.log_chat_id is None:
            return
        values = {"cause": cause, "detail": detail or "—", "count": count,
                  "retry": f"/retry_{job_id}" if job_id else ""}
        self.notices.tell(Notice(self.log_chat_id, "log_error_cause", values, purpose="log"), cur)
