"""Settings → Telegram accounts (the `panel_tg` blueprint): the shop's employees' Telegram
accounts, relayed to Planfix and the desk — their state (online, offline, revoked,
stopped), their Planfix link, start / stop / restart, and adding one by QR code or by
login code and cloud password.

A login is a conversation with Telegram that lasts minutes: these views only write and
read its `tg_logins` row (`services/tglogins.py`); the accounts process holds it. The
login's page polls `…/state` (JSON: its step and the QR code to show, drawn here as an SVG
image) and reloads when the step changes. The session itself is never shown nor written
to a file; the new account's client token is shown once."""
from __future__ import annotations

import logging

import segno
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from doors.panel.texts import text
from services.tglogins import BadLogin, TgLogins
from utils.http import bound

log = logging.getLogger(__name__)
blueprint = Blueprint("panel_tg", __name__)
ACTIONS = ("start", "stop", "restart")


def logins(*, configured: bool = True) -> TgLogins:
    """The views' context; 404 (what to set) when Telegram accounts are not configured."""
    t = bound()
    if configured and not t.configured:
        abort(404, "error.tg_not_configured")
    return t


def bind(settings, db) -> TgLogins:
    return TgLogins(settings, db)


def qr_image(url: str) -> str:
    """The QR code of `url` as an SVG data URI (the panel's CSP allows data: images)."""
    return segno.make(url, error="m").svg_data_uri(scale=5, border=4, light="white")


def step_of(row) -> tuple[str, str]:
    """(the login's state as the page shows it, the key that changes with whatever the page
    says: the step, Telegram's last word, an answer on its way)."""
    state = row.state if row.live or row.state in ("done", "failed") else "expired"
    return state, f"{state}|{row.message or ''}|{'pending' if row.answer_enc else ''}"


def _login_or_404(ref: str):
    row = logins().get(ref)
    if row is None:
        abort(404, "error.no_login")
    return row


@blueprint.get("/settings/telegram")
@login_required
def accounts():
    t = logins(configured=False)
    return render_template("tgaccounts.html", configured=t.configured, accounts=t.all() if t.configured else [],
                           running=t.configured and t.process_running(),
                           webhook=f"{(t.settings.public_url or '').rstrip('/')}/planfix/webhook")


@blueprint.post("/settings/telegram/logins")
@login_required
def login_start():
    t = logins()
    form = request.form
    try:
        ref = t.start(method=form.get("method", ""), number=form.get("number", ""),
                      client_name=form.get("client_name", ""), url_planfix=form.get("url_planfix", ""),
                      token_planfix=form.get("token_planfix", ""), by=f"panel:{current_user.login}")
    except BadLogin as exc:
        flash(text("tg.not_started", why=exc), "warning")
        return redirect(url_for("panel_tg.accounts"))
    log.info("panel: %s started a Telegram login by %s", current_user.login, form.get("method"))
    return redirect(url_for("panel_tg.login_page", ref=ref))


@blueprint.get("/settings/telegram/logins/<ref>")
@login_required
def login_page(ref: str):
    t = logins()
    row = _login_or_404(ref)
    qr = t.qr_url(row)
    client_token = t.client_token(ref) if row.state == "done" else None   # once
    state, key = step_of(row)
    return render_template("tglogin.html", login=row, state=state, key=key, qr=qr_image(qr) if qr else None,
                           pending=bool(row.answer_enc),
                           client_token=client_token, running=t.process_running(),
                           webhook=f"{(t.settings.public_url or '').rstrip('/')}/planfix/webhook")


@blueprint.get("/settings/telegram/logins/<ref>/state")
@login_required
def login_state(ref: str):
    t = logins()
    row = _login_or_404(ref)
    qr = t.qr_url(row)
    state, key = step_of(row)
    return jsonify({"state": state, "key": key, "qr": qr_image(qr) if qr else None})


@blueprint.post("/settings/telegram/logins/<ref>/answer")
@login_required
def login_answer(ref: str):
    _login_or_404(ref)
    try:
        logins().answer(ref, request.form.get("answer", ""))
    except BadLogin as exc:
        flash(text("tg.not_taken", why=exc), "warning")
    return redirect(url_for("panel_tg.login_page", ref=ref))


@blueprint.post("/settings/telegram/<number>/<action>")
@login_required
def account_action(number: str, action: str):
    t = logins()
    if action not in ACTIONS or not number.isdigit():
        abort(404, "error.no_action")
    done = t.stop_account(number) if action == "stop" else t.start_account(number)
    if not done:
        abort(404, "error.no_account")
    log.info("panel: %s: %s Telegram account %s", current_user.login, action, number)
    flash(text({"stop": "tg.stopped", "start": "tg.starting", "restart": "tg.restarting"}[action],
               number=number))
    return redirect(url_for("panel_tg.accounts"))
