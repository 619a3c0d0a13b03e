"""The figures by e-mail (docs/digest.md): a daily or weekly digest of the reports page's
figures, sent over SMTP once per period however many workers run.

* Who sends: the periodic `digest_schedule` job finds the latest period whose send time
  (DIGEST_HOUR in TZ, the day after a daily period, the Monday after a weekly one) has
  passed and, in one transaction, stores its `digests` row (period_key unique) and its
  `digest_send` job (dedupe key from the period). A second worker, a second run or a
  restart finds the row and stores nothing. "Send now" in the panel is a row of its own.
* Once: the send job commits `sending` right before the message's data goes to the server
  and `sent` when the server answers 250. A crash before `sending` leaves nothing handed
  over: the retry sends. A run that finds `sending` (a crash, or a connection cut, after
  the data went out and before the answer was recorded) cannot know whether the server has
  the message — SMTP has no way to ask — so it does NOT send again: the digest becomes
  `unknown`, a dead letter with #ERROR; Retry on that dead letter, or Send now, sends it
  again (with the same Message-ID, so a mail client that got both may fold them).
* Failures: the server away or 4xx → retried (the failure policy); 5xx → a dead letter
  with #ERROR at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from config import Settings
from models.db import Database
from models.digests import DigestRepository, DigestRow
from models.jobs import SYNC, Job, JobQueue, Permanent
from models.panel import PanelFigures
from services.panel import Figures, Report, Reports
from services.report_charts import BAR, BAR_ALT, manager_names, report_charts
from utils import mail, png

log = logging.getLogger(__name__)

DIGEST_SEND = "digest_send"
DIGEST_SCHEDULE = "digest_schedule"
CHECK_AT_MOST_EVERY = 600.0
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(("html",), disabled_extensions=("txt",),
                                                           default=True))


@dataclass(frozen=True)
class Period:
    key: str
    since: datetime       # naive UTC
    until: datetime
    title: str


def _utc(local: datetime) -> datetime:
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone)


def due_period(now: datetime, settings: Settings) -> tuple[Period, datetime]:
    """The latest period whose send time has passed at `now` (naive UTC), and the next send
    time (naive UTC)."""
    zone = ZoneInfo(settings.tz)
    local = now.replace(tzinfo=timezone.utc).astimezone(zone)
    today = local.date()
    if settings.digest_period == "weekly":
        monday = today - timedelta(days=today.weekday())
        send_at = datetime.combine(monday, time(settings.digest_hour), zone)
        if local < send_at:        # this Monday's digest is not due yet: last Monday's was
            monday -= timedelta(days=7)
        else:
            send_at = datetime.combine(monday + timedelta(days=7), time(settings.digest_hour), zone)
        first = monday - timedelta(days=7)
        year, week, _ = first.isocalendar()
        period = Period(f"weekly:{year}-W{week:02d}", _utc(_midnight(first, zone)),
                        _utc(_midnight(monday, zone)),
                        f"the week {first.isoformat()} – {(monday - timedelta(days=1)).isoformat()}")
        return period, _utc(send_at)
    send_at = datetime.combine(today, time(settings.digest_hour), zone)
    if local < send_at:            # today's digest is not due yet: yesterday's was
        day = today - timedelta(days=2)
    else:
        day = today - timedelta(days=1)
        send_at = datetime.combine(today + timedelta(days=1), time(settings.digest_hour), zone)
    period = Period(f"daily:{day.isoformat()}", _utc(_midnight(day, zone)),
                    _utc(_midnight(day + timedelta(days=1), zone)), day.isoformat())
    return period, _utc(send_at)


@dataclass(frozen=True)
class ChannelLine:
    channel: str
    received: int
    sent: int
    notices_sent: int
    notices_failed: int


@dataclass(frozen=True)
class DigestContent:
    title: str
    since_local: str
    until_local: str
    report: Report
    who: Callable
    channels: list[ChannelLine]
    dead_letters: list[tuple[str, int]]
    hours_text: str
    tz: str

    @property
    def dead_total(self) -> int:
        return sum(n for _, n in self.dead_letters)


def minutes(value: float) -> str:
    return png.number(value)


def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


class Digests:
    """The digest's decisions and its message: scheduling, "send now", the send step."""

    def __init__(self, settings: Settings, db: Database, jobs: JobQueue,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self.rows = DigestRepository(db)
        self.figures = PanelFigures(db)
        self.reports = Reports(db, settings.hours, settings.sla_remind_minutes)

    # -- deciding ------------------------------------------------------------------------

    def schedule(self, job: Job | None = None) -> float:
        """The periodic job: the due period's row and send job, once; seconds to the next look."""
        if not self.settings.digest_on:
            return CHECK_AT_MOST_EVERY
        now = self.clock()
        period, next_at = due_period(now, self.settings)
        if not self.rows.exists(period.key):
            self._store(period, requested_by=None, now=now)
        return max(1.0, min(CHECK_AT_MOST_EVERY, (next_at - now).total_seconds()))

    def send_now(self, by: str) -> bool:
        """An admin's "Send now": the last day (daily) or seven days (weekly, or no period
        set) up to now, as a digest of its own. False when one was asked for this minute
        already (a double click sends one)."""
        now = self.clock()
        length = timedelta(days=1) if self.settings.digest_period == "daily" else timedelta(days=7)
        zone = ZoneInfo(self.settings.tz)
        since_local = (now - length).replace(tzinfo=timezone.utc).astimezone(zone)
        until_local = now.replace(tzinfo=timezone.utc).astimezone(zone)
        period = Period(f"now:{now:%Y-%m-%dT%H:%M}", now - length, now,
                        f"{since_local:%Y-%m-%d %H:%M} – {until_local:%Y-%m-%d %H:%M}")
        return self._store(period, requested_by=by[:64], now=now)

    def _store(self, period: Period, *, requested_by: str | None, now: datetime) -> bool:
        domain = self.settings.digest_from.rpartition("@")[2] or "keepdesk.invalid"
        safe_key = "".join(c if c.isalnum() else "." for c in period.key)
        with self.db.transaction() as cur:
            digest_id = self.rows.create(cur, period.key, period.since, period.until,
                                         f"<digest.{safe_key}@{domain}>", requested_by, now)
            if digest_id is None:
                return False
            self.jobs.enqueue(SYNC, DIGEST_SEND, {"digest": digest_id, "title": period.title},
                              dedupe_key=f"digest:{period.key}", cur=cur)
        log.info("digest %s (%s) queued", digest_id, period.key)
        return True

    def recent(self, limit: int = 10) -> list[DigestRow]:
        return self.rows.recent(limit)

    # -- the message ---------------------------------------------------------------------

    def content(self, since: datetime, until: datetime, title: str) -> DigestContent:
        report = self.reports.build(since, until)
        who = manager_names(self.figures.team())
        lines: dict[str, dict[str, int]] = {}
        for row in self.rows.messages_per_channel(since, until):
            lines.setdefault(row["channel"], {}).update(received=int(row["received"] or 0),
                                                       sent=int(row["sent"] or 0))
        for channel, n in self.rows.answers_per_channel(since, until).items():
            entry = lines.setdefault(channel, {})
            entry["sent"] = max(entry.get("sent", 0), n)
        for row in self.rows.notices_per_channel(since, until):
            lines.setdefault(row["channel"], {}).update(notices_sent=int(row["sent"] or 0),
                                                       notices_failed=int(row["failed"] or 0))
        channels = [ChannelLine(c, v.get("received", 0), v.get("sent", 0), v.get("notices_sent", 0),
                                v.get("notices_failed", 0)) for c, v in sorted(lines.items())]
        dead = [(r["kind"], int(r["n"])) for r in self.rows.dead_letters(since, until)]
        zone = ZoneInfo(self.settings.tz)

        def shown(at: datetime) -> str:
            return f"{at.replace(tzinfo=timezone.utc).astimezone(zone):%Y-%m-%d %H:%M}"
        return DigestContent(title, shown(since), shown(until), report, who, channels, dead,
                             self.settings.hours.text, self.settings.tz)

    def message(self, row: DigestRow, title: str) -> EmailMessage:
        content = self.content(row.since, row.until, title)
        charts = report_charts(content.report, content.who)
        images = {
            "speed": png.paired_bars([(m, p) for _, m, p in charts["speed"].rows],
                                     colours=(BAR, BAR_ALT)),
            "by_hour": png.bars(list(charts["by_hour"].values), list(charts["by_hour"].labels),
                                colour=BAR, label_every=charts["by_hour"].label_every),
            "by_day": png.bars(list(charts["by_day"].values), list(charts["by_day"].labels),
                               colour=BAR_ALT, label_every=charts["by_day"].label_every),
        }
        domain = row.message_id.rpartition("@")[2].rstrip(">")
        cids = {key: f"{key}.{row.id}@{domain}" for key in images}
        values = dict(c=content, charts=charts, cids=cids, minutes=minutes, percent=percent)
        message = EmailMessage()
        message["Subject"] = f"KeepDesk: the figures of {title}"
        message["From"] = self.settings.digest_from
        message["To"] = ", ".join(self.settings.digest_recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = row.message_id
        message.set_content(_TEMPLATES.get_template("digest.txt").render(**values))
        message.add_alternative(_TEMPLATES.get_template("digest.html").render(**values), subtype="html")
        html = message.get_payload()[1]
        for key, data in images.items():
            html.add_related(data, "image", "png", cid=f"<{cids[key]}>",
                             filename=f"{key}.png", disposition="inline")
        return message

    # -- the send step -------------------------------------------------------------------

    def server(self) -> mail.SmtpServer:
        s = self.settings
        return mail.SmtpServer(s.smtp_host, s.smtp_port_used, s.smtp_security, s.smtp_login,
                               s.smtp_password, s.smtp_ca_file, s.smtp_timeout)

    def send(self, job: Job) -> None:
        """The `digest_send` job."""
        row = self.rows.get(int(job.payload["digest"]))
        if row is None or row.status == "sent":
            return
        if row.status == "sending":
            self.rows.settle(row.id, "unknown", self.clock(),
                             "the send was cut off after the message went to the mail server")
            raise Permanent("the digest may or may not have been delivered",
                            f"digest {row.id} ({row.period_key}): the send was cut off after the"
                            " message went to the mail server; not sent again by itself —"
                            " Retry or Send now sends it again")
        if not (self.settings.smtp_host and self.settings.digest_recipients):
            raise Permanent("the digest has no mail server or recipients",
                            "set SMTP_HOST, DIGEST_RECIPIENTS (docs/digest.md)")
        message = self.message(row, str(job.payload.get("title") or row.period_key))
        try:
            mail.send(self.server(), message, list(self.settings.digest_recipients),
                      before_data=lambda: self.rows.begin_data(row.id, self.clock()))
        except mail.MailError as exc:
            if exc.handed_over:
                self.rows.settle(row.id, "unknown", self.clock(), str(exc))
                raise Permanent("the digest may or may not have been delivered",
                                f"digest {row.id} ({row.period_key}): {exc}; not sent again by"
                                " itself — Retry or Send now sends it again") from None
            if exc.transient:
                if self.rows.get(row.id).status == "sending":
                    self.rows.settle(row.id, "queued", self.clock(), str(exc))
                raise
            self.rows.settle(row.id, "failed", self.clock(), str(exc))
            raise Permanent("the mail server refused the digest", f"digest {row.id}: {exc}") from None
        self.rows.settle(row.id, "sent", self.clock())
        log.info("digest %s (%s) sent to %s recipient(s)", row.id, row.period_key,
                 len(self.settings.digest_recipients))
