"""The panel's pages (WEB.md §1). Each route: read and bound the input, call a service or a
repository, render. Every POST is CSRF-checked (the app's CSRFProtect) and answers with a
redirect and a flash message (post/redirect/get)."""
from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timedelta

import requests
from flask import (Blueprint, Response, abort, flash, redirect, render_template,
                   request, url_for)
from flask_login import current_user, login_required, login_user, logout_user

from channels.base import Rejected
from channels.media import MediaFetcher
from config import SETTING_NAMES, Settings, _SPEC
from doors.panel import charts
from doors.panel.texts import COOKIE, COOKIE_AGE, LANGUAGES, TEXTS, text
from models.conversations import ConversationRepository
from models.panel import PanelFigures, PanelUserRepository
from models.responses import EVERYONE
from models.users import ADMIN, BANNED, MANAGER, User
from services.api_tokens import ApiTokens
from services.results import Refused
from services.panel import Overview, Reports
from services.report_charts import manager_names, report_charts
from services.panel_auth import MAX_PASSWORD, MIN_PASSWORD, LoginOutcome
from utils import procstats
from utils.http import bound

log = logging.getLogger(__name__)
blueprint = Blueprint("panel", __name__)

PAGE = 30
HISTORY = 200
STATUSES = ("new", "in_work", "done", "archive")
ROLE_ACTIONS = {"approve": MANAGER, "admin": ADMIN, "ban": BANNED}
MAX_FILE = 20 * 1024 * 1024


class Panel:
    """What the pages share, built once per app."""

    def __init__(self, settings: Settings, db, deps, auth) -> None:
        self.settings = settings
        self.db = db
        self.deps = deps
        self.auth = auth
        self.figures = PanelFigures(db)
        self.overview = Overview(db, deps.jobs, lambda: deps.clock())
        self.reports = Reports(db, settings.hours, settings.sla_remind_minutes)
        self.team = deps.team
        self.tokens = ApiTokens(db)
        self.conversations = ConversationRepository(db)
        self.media = MediaFetcher(db, deps.channels)
        self.started = time.time()
        self._webhook: tuple[float, tuple[str, dict]] | None = None

    def webhook_status(self) -> str:
        """Telegram's view of the webhook (getWebhookInfo), asked at most every 30 s, in
        the reader's language (kept as a catalogue key and its values)."""
        now = time.monotonic()
        if self._webhook and now - self._webhook[0] < 30:
            key, values = self._webhook[1]
            return text(key, **values)
        try:
            from bot.factory import create_bot
            from bot.sender import TelegramApi
            info = TelegramApi(create_bot(self.settings)).webhook_info(timeout=3)
            if not info.url:
                status = ("webhook.not_set", {})
            elif info.last_error_message:
                status = ("webhook.set_error", {"pending": info.pending_update_count,
                                                "error": info.last_error_message[:120]})
            else:
                status = ("webhook.set", {"pending": info.pending_update_count})
        except Exception as exc:  # a page must show even when Telegram does not answer
            status = ("webhook.unknown", {"error": type(exc).__name__})
        self._webhook = (now, status)
        return text(status[0], **status[1])


def panel() -> Panel:
    """The pages' context (`Panel`), as the panel mounted the blueprint."""
    return bound()


def _int_arg(name: str, default: int | None = None, *, low: int = 0, high: int = 2**62) -> int | None:
    raw = request.values.get(name, "")
    if not raw.isdigit() or not raw.isascii():
        return default
    value = int(raw)
    return value if low <= value <= high else default


def client_address() -> str:
    """Who is logging in, for the throttle: the peer, or behind a proxy named in
    TRUSTED_PROXIES the client it forwarded (utils/http.py::TrustedProxies, the one place
    forwarded headers are believed)."""
    return request.remote_addr or "?"


def _actor() -> User:
    user = current_user.user
    return User(tg_id=user.tg_id or 0, username=None, first_name=user.login, language=None,
                role=ADMIN, reachable=False)


# -- login ----------------------------------------------------------------------------------

@blueprint.get("/healthz")
def healthz():
    """For the supervisor's checks and a proxy: is the database there (nothing else told)."""
    up = panel().db.ping()
    return {"ok": up, "database": "up" if up else "down"}, 200 if up else 503


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("panel.home"))
    if request.method == "GET":
        return render_template("login.html")
    result = panel().auth.login(request.form.get("login"), request.form.get("password"),
                                client_address())
    if result.outcome is LoginOutcome.OK:
        _open_session(result.user)
        log.info("panel: %s logged in", result.user.login)
        return redirect(url_for("panel.home"))
    if result.outcome is LoginOutcome.LOCKED:
        message = text("login.locked", minutes=result.retry_minutes)
    elif result.outcome is LoginOutcome.NOT_ADMIN:
        message = text("login.not_admin")
    else:
        message = text("login.wrong")
    log.warning("panel: login refused (%s) from %s", result.outcome.value, client_address())
    status = {LoginOutcome.LOCKED: 429, LoginOutcome.NOT_ADMIN: 403}.get(result.outcome, 401)
    return render_template("login.html", error=message), status


def _password_words(password: str | None, problem: str) -> str:
    """What is wrong with a new password (services/panel_auth.py::password_problem), in the
    reader's language."""
    if not password or len(password) < MIN_PASSWORD:
        return text("password.too_short", count=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        return text("password.too_long", count=MAX_PASSWORD)
    return problem


def _open_session(user) -> None:
    """A new server-side session for this browser (and a fresh signed cookie)."""
    from doors.panel import SessionUser
    from flask import session
    session.clear()
    login_user(SessionUser(user, panel().auth.open_session(user)))


@blueprint.route("/setup", methods=["GET", "POST"])
def setup():
    """A password set with the one-time code `/web_access` gave in Telegram."""
    if request.method == "GET":
        return render_template("setup.html", login=request.args.get("login", "")[:64])
    form = request.form
    if form.get("password") != form.get("again"):
        return render_template("setup.html", login=form.get("login", "")[:64],
                               error=text("setup.differ")), 400
    result = panel().auth.finish_setup(form.get("login"), form.get("code"), form.get("password"),
                                       client_address())
    if isinstance(result, str):
        return render_template("setup.html", login=form.get("login", "")[:64],
                               error=text("setup.not_set", why=_password_words(form.get("password"), result))), 400
    if result.outcome is LoginOutcome.OK:
        log.info("panel: %s set a password with a /web_access code", result.user.login)
        flash(text("setup.done"))
        return redirect(url_for("panel.login"))
    message = (text("login.locked", minutes=result.retry_minutes)
               if result.outcome is LoginOutcome.LOCKED else text("setup.wrong"))
    return render_template("setup.html", login=form.get("login", "")[:64], error=message), 400


@blueprint.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """My password: a new one ends every session of mine; this browser gets a new one."""
    if request.method == "GET":
        return render_template("account.html")
    form = request.form
    if form.get("password") != form.get("again"):
        return render_template("account.html", error=text("account.differ")), 400
    result = panel().auth.change_password(current_user.user, form.get("current"),
                                          form.get("password"), client_address())
    if isinstance(result, str):
        return render_template("account.html", error=text("account.not_changed", why=_password_words(form.get("password"), result))), 400
    if result.outcome is not LoginOutcome.OK:
        error = (text("login.locked", minutes=result.retry_minutes)
                 if result.outcome is LoginOutcome.LOCKED else text("account.wrong"))
        return render_template("account.html", error=error), 400
    _open_session(result.user)
    log.info("panel: %s changed their password", result.user.login)
    flash(text("account.changed"))
    return redirect(url_for("panel.home"))


@blueprint.post("/logout")
@login_required
def logout():
    """Ends this session on the server too: a copy of the cookie opens nothing after."""
    panel().auth.end_session(current_user.session_id)
    logout_user()
    flash(text("login.logged_out"))
    return redirect(url_for("panel.login"))


# -- language ---------------------------------------------------------------------------

BACK_BEFORE_LOGIN = ("panel.login", "panel.setup")


@blueprint.post("/language")
def language():
    """The panel's language: kept in this browser's cookie (the switch before login) and,
    for a logged-in user, on their panel user — every page follows it from the next one."""
    chosen = request.form.get("language")
    if current_user.is_authenticated:
        back = url_for("panel.account")
    else:
        endpoint = request.form.get("back")
        back = url_for(endpoint if endpoint in BACK_BEFORE_LOGIN else "panel.login")
    if chosen not in LANGUAGES:
        return redirect(back)
    if current_user.is_authenticated:
        PanelUserRepository(panel().db).set_language(current_user.user.id, chosen)
        log.info("panel: %s chose the language %s", current_user.login, chosen)
        flash(text("account.language_saved", chosen))
    answer = redirect(back)
    from doors.panel import reached_over_https
    answer.set_cookie(COOKIE, chosen, max_age=COOKIE_AGE, httponly=True, samesite="Lax",
                      secure=reached_over_https())
    return answer


# -- home -----------------------------------------------------------------------------------

@blueprint.get("/")
@login_required
def home():
    p = panel()
    processes = procstats.keepdesk_processes()
    health = []
    for name, channel in sorted(p.deps.channels.items()):
        try:
            state = channel.health()
        except Exception as exc:  # one channel's trouble never hides the page
            state = type("H", (), {"ok": False, "detail": type(exc).__name__})()
        health.append({"name": getattr(channel, "label", name), "ok": state.ok, "detail": state.detail})
    letters, dead_total = p.deps.dead_letters.page(5)
    return render_template(
        "home.html", processes=processes,
        uptime=max((pr.uptime_seconds for pr in processes), default=time.time() - p.started),
        memory=sum(pr.rss_bytes for pr in processes),
        counts=p.overview.message_counts(p.settings.hours.zone), queues=p.overview.queues(),
        depth=p.deps.jobs.depth(), webhook=p.webhook_status(), health=health,
        letters=letters, dead_total=dead_total)


# -- errors ---------------------------------------------------------------------------------

@blueprint.get("/errors")
@login_required
def errors():
    page = _int_arg("page", 0, high=10_000)
    letters, total = panel().deps.dead_letters.page(PAGE, page)
    return render_template("errors.html", letters=letters, total=total, page=page, size=PAGE)


@blueprint.post("/errors/<int:job_id>/retry")
@login_required
def retry(job_id: int):
    retried = panel().deps.dead_letters.retry(job_id, by=f"panel: {current_user.login}")
    if retried.done:
        flash(text("retry.done", id=job_id))
    else:
        status = retried.status
        what = (text(f"retry.why_{status or 'missing'}") if status in ("done", "pending", "running", None)
                else status)
        flash(text("retry.refused", id=job_id, why=what), "warning")
    return redirect(url_for("panel.errors"))


# -- conversations --------------------------------------------------------------------------

@blueprint.get("/conversations")
@login_required
def conversations():
    p = panel()
    query = (request.args.get("q") or "").strip()[:200]
    channel = request.args.get("channel") or None
    channels = sorted(set(p.figures.channel_names()) | set(p.deps.channels))
    channel = channel if channel in channels else None
    status = request.args.get("status")
    status = status if status in STATUSES else None
    holder = _int_arg("holder")
    unanswered = request.args.get("unanswered") == "1"
    page = _int_arg("page", 0, high=10_000)
    refused = None
    if query:
        found = p.deps.tools.search.find(query, limit=PAGE)
        if isinstance(found, Refused):
            refused, rows, total = text("conversations.search_short", limit=found.limit), [], 0
        else:
            holders = p.figures.holders([c.id for c in found])
            rows, total = [(c, holders.get(c.id)) for c in found], len(found)
    else:
        rows, total = p.figures.conversations(channel=channel, status=status, holder=holder,
                                              unanswered=unanswered, offset=page * PAGE, limit=PAGE)
    people = {u["tg_id"]: u for u in p.figures.team()}
    return render_template("conversations.html", rows=rows, total=total, page=page, size=PAGE,
                           query=query, channel=channel, channels=channels, status=status,
                           statuses=STATUSES, holder=holder, unanswered=unanswered,
                           people=people, refused=refused)


@blueprint.get("/conversations/<int:conversation_id>")
@login_required
def conversation(conversation_id: int):
    p = panel()
    chat = p.conversations.get(conversation_id)
    if chat is None:
        abort(404, "error.no_conversation")
    holder = p.figures.holders([chat.id]).get(chat.id)
    people = {u["tg_id"]: u for u in p.figures.team()}
    return render_template("conversation.html", chat=chat, holder=holder, people=people,
                           messages=p.figures.history(chat.id, HISTORY),
                           notes=p.deps.tools.notes.latest(chat.id, 20))


@blueprint.get("/conversations/<int:conversation_id>/files/<int:message_id>")
@login_required
def message_file(conversation_id: int, message_id: int):
    """A customer's file or image, fetched by the panel: the browser never sees the
    channel's URL or token."""
    p = panel()
    row = p.figures.message_file(conversation_id, message_id)
    if row is None or not (row["media_ref"] or row["url"]):
        abort(404, "error.no_file")
    name = (row["filename"] or f"file-{message_id}").replace('"', "")
    try:
        if row["media_ref"]:
            media = p.media(message_id)
            body, mime = media.content, media.mime or "application/octet-stream"
        else:
            if not row["url"].lower().startswith(("https://", "http://")):
                abort(404, "error.no_fetchable_file")
            from utils import fetch   # the CRM's link: only a public address or a configured origin
            try:
                got = fetch.for_settings(p.settings, read_timeout=10, deadline=30).get(row["url"],
                                                                                      max_bytes=MAX_FILE)
            except fetch.TooLarge:
                abort(413, "error.file_too_large")
            except fetch.FetchError as exc:
                raise Rejected(str(exc)) from None
            if got.status != 200:
                raise Rejected(f"HTTP {got.status}")
            body, mime = got.data, got.mime
    except (Rejected, requests.RequestException) as exc:
        log.warning("panel: file of message %s unavailable: %s", message_id, type(exc).__name__)
        abort(404, "error.file_unavailable")
    inline = mime.startswith("image/") and mime != "image/svg+xml"
    response = Response(body, mimetype=mime if inline else "application/octet-stream")
    response.headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{name}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# -- team -----------------------------------------------------------------------------------

@blueprint.get("/team")
@login_required
def team():
    p = panel()
    people = p.figures.team()
    open_chats = {u["tg_id"]: p.figures.open_chats_of(u["tg_id"]) for u in people if u["open_chats"]}
    return render_template("team.html", people=people, open_chats=open_chats,
                           me=current_user.user.tg_id)


@blueprint.post("/team/<int:tg_id>/<action>")
@login_required
def team_action(tg_id: int, action: str):
    role = ROLE_ACTIONS.get(action)
    if role is None:
        abort(404, "error.no_action")
    p = panel()
    if p.deps.users.get(tg_id) is None:
        abort(404, "error.no_person")
    decision = f"panel:{current_user.user.id}:{tg_id}:{action}:{time.time_ns()}"
    changed = p.team.set_role(tg_id, role, by_tg_id=current_user.user.tg_id,
                              key=lambda purpose: f"{decision}:{purpose}")
    if changed is None:
        flash(text("team.own_role"), "warning")
    else:
        log.info("panel: %s set %s to %s", current_user.login, tg_id, role)
        flash(text("team.now", name=changed.display_name, role=text(f"role.{role}")))
    return redirect(url_for("panel.team"))


# -- reports --------------------------------------------------------------------------------

@blueprint.get("/reports")
@login_required
def reports():
    p = panel()
    days = _int_arg("days", 7, low=1, high=366)
    now = p.deps.clock()
    until = now
    since = now - timedelta(days=days)
    report = p.reports.build(since, until)
    who = _who(manager_names(p.figures.team()))
    drawn = {key: charts.draw(_titled(chart)) for key, chart in report_charts(report, who).items()}
    hour_chart, day_chart, speed_chart = drawn["by_hour"], drawn["by_day"], drawn["speed"]
    return render_template("reports.html", report=report, days=days, who=who,
                           hour_chart=hour_chart, day_chart=day_chart, speed_chart=speed_chart,
                           hours_text=p.settings.hours.text, tz=p.settings.tz,
                           digest=digest_settings(p.settings), digests=p.deps.digests.recent(5))


def _who(names):
    """The reports' names, with Everyone and Outside the desk in the reader's language."""
    def who(manager_id):
        if manager_id == EVERYONE:
            return text("reports.everyone")
        if manager_id is None:
            return text("reports.outside")
        return names(manager_id)
    return who


CHART_TITLES = {"speed": "reports.speed_chart", "by_hour": "reports.hour_chart",
                "by_day": "reports.day_chart"}


def _titled(chart):
    """A report chart with its title (and a minutes unit) in the reader's language."""
    changes = {"title": text(CHART_TITLES[chart.key])} if chart.key in CHART_TITLES else {}
    if chart.unit == " min":
        changes["unit"] = text("chart.minutes")
    return dataclasses.replace(chart, **changes)


def _refusal(result: Refused) -> str:
    why = TEXTS["en"].get(f"refusal.{result.why.value}") and text(f"refusal.{result.why.value}")
    why = why or result.why.value.replace("_", " ")
    return f"{why} {result.detail}" if result.detail else why


def digest_settings(settings: Settings) -> list[tuple[str, str]]:
    """The digest's settings as the reports page shows them (the password only as set)."""
    s = settings
    return [("DIGEST_PERIOD", s.digest_period or text("digest.off")),
            ("DIGEST_HOUR", f"{s.digest_hour:02d}:00 ({s.tz})"),
            ("DIGEST_RECIPIENTS", ", ".join(s.digest_recipients) or "—"),
            ("DIGEST_FROM", s.digest_from or "—"),
            ("SMTP", f"{s.smtp_host}:{s.smtp_port_used} ({s.smtp_security.upper()})" if s.smtp_host else "—"),
            ("SMTP_LOGIN", s.smtp_login or "—"),
            ("SMTP_PASSWORD", text("settings.secret_set") if s.smtp_password else "—")]


@blueprint.post("/reports/digest")
@login_required
def send_digest():
    """Send now: the digest of the last period up to now, once (the workers send it)."""
    p = panel()
    if not (p.settings.smtp_host and p.settings.digest_recipients and p.settings.digest_from):
        flash(text("digest.no_server"), "warning")
    elif p.deps.digests.send_now(current_user.login):
        log.info("panel: %s asked for the digest now", current_user.login)
        flash(text("digest.on_its_way", recipients=", ".join(p.settings.digest_recipients)))
    else:
        flash(text("digest.already"), "warning")
    return redirect(url_for("panel.reports"))


# -- settings -------------------------------------------------------------------------------

def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every setting by its name, as this process runs with it; a secret (a field kept out
    of reprs, or a value among `settings.secrets`) only says that it is set."""
    secret_values = set(settings.secrets)
    shown = []
    for name in SETTING_NAMES:
        attr = _SPEC[name][0]
        value = getattr(settings, attr, None)
        if value in (None, "", ()):
            shown_value = "—"
        elif not settings.__dataclass_fields__[attr].repr or value in secret_values:
            shown_value = text("settings.secret_set")
        else:
            shown_value = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        shown.append((name, shown_value))
    return shown


@blueprint.get("/settings")
@login_required
def settings_page():
    p = panel()
    replies, total = p.deps.tools.replies.page(0, 200)
    return render_template("settings.html", settings=effective_settings(p.settings),
                           tokens=p.tokens.all(), templates=p.settings.whatsapp_templates,
                           replies=replies, replies_total=total, new_token=None)


@blueprint.post("/settings/tokens")
@login_required
def token_issue():
    p = panel()
    name = (request.form.get("name") or "").strip()[:64]
    if not name:
        flash(text("settings.token_needs_name"), "warning")
        return redirect(url_for("panel.settings_page"))
    token = p.tokens.create(name)
    log.info("panel: %s issued 1C token %r", current_user.login, name)
    replies, total = p.deps.tools.replies.page(0, 200)
    # Shown once, on this answer only (never stored in a flash cookie or a log).
    return render_template("settings.html", settings=effective_settings(p.settings),
                           tokens=p.tokens.all(), templates=p.settings.whatsapp_templates,
                           replies=replies, replies_total=total, new_token=(name, token))


@blueprint.post("/settings/tokens/<int:token_id>/revoke")
@login_required
def token_revoke(token_id: int):
    count = panel().tokens.revoke_id(token_id)
    flash(text("settings.token_revoked") if count else text("settings.no_such_token"),
          None if count else "warning")
    return redirect(url_for("panel.settings_page"))


@blueprint.post("/settings/replies")
@login_required
def reply_add():
    title = (request.form.get("title") or "").strip()
    body = (request.form.get("text") or "").strip()
    result = panel().deps.tools.replies.add(_actor(), f"{title}\n{body}" if body else title)
    if isinstance(result, Refused):
        flash(text("settings.reply_not_saved", why=_refusal(result)), "warning")
    else:
        flash(text("settings.reply_saved", title=result.title))
    return redirect(url_for("panel.settings_page"))


@blueprint.post("/settings/replies/<int:reply_id>/edit")
@login_required
def reply_edit(reply_id: int):
    """A changed reply is saved as a new one and the old one retired (managers who have
    the old one open keep a consistent text)."""
    replies = panel().deps.tools.replies
    if replies.get(reply_id) is None:
        abort(404, "error.no_reply")
    title = (request.form.get("title") or "").strip()
    body = (request.form.get("text") or "").strip()
    result = replies.add(_actor(), f"{title}\n{body}" if body else title)
    if isinstance(result, Refused):
        flash(text("settings.reply_unchanged", why=_refusal(result)), "warning")
    else:
        replies.delete(reply_id)
        flash(text("settings.reply_saved", title=result.title))
    return redirect(url_for("panel.settings_page"))


@blueprint.post("/settings/replies/<int:reply_id>/delete")
@login_required
def reply_delete(reply_id: int):
    done = panel().deps.tools.replies.delete(reply_id)
    flash(text("settings.reply_deleted") if done else text("settings.no_such_reply"),
          None if done else "warning")
    return redirect(url_for("panel.settings_page"))


@blueprint.app_template_filter("duration")
def duration(seconds: float) -> str:
    seconds = int(seconds or 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return text("unit.days", days=days, hours=hours)
    if hours:
        return text("unit.hours", hours=hours, minutes=minutes)
    return text("unit.minutes", minutes=minutes, seconds=secs)


@blueprint.app_template_filter("megabytes")
def megabytes(value: int) -> str:
    return text("unit.megabytes", value=f"{value / 1048576:.0f}")


@blueprint.app_template_filter("when")
def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "—"


@blueprint.app_template_filter("minutes")
def minutes(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
