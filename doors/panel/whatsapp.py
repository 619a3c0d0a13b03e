"""Settings → WhatsApp (services/wa_accounts.py): the shop's WhatsApp accounts, a gateway
account added by an owner, and its linking page — the QR code the gateway serves
(refreshed by the page's script while the instance is not authorized), a code for linking
by phone number, Set up again, Log out, Reboot, Remove. Every route needs a panel session
(an admin's: the panel opens to no one else) and every form its CSRF token; the gateway's
token is never put in a page."""
from __future__ import annotations

import logging

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from doors.panel.texts import text
from services.wa_accounts import AccountProblem, WhatsAppAccounts
from utils.http import bound

log = logging.getLogger(__name__)
blueprint = Blueprint("panel_whatsapp", __name__)


def accounts() -> WhatsAppAccounts:
    return bound()


def bind(parts) -> WhatsAppAccounts:
    return WhatsAppAccounts(parts.settings, parts.db, parts.deps.channels.get("whatsapp"), parts.deps.jobs)


def _form(name: str, limit: int = 600) -> str:
    return (request.form.get(name) or "")[:limit]


@blueprint.get("/settings/whatsapp")
@login_required
def page():
    service = accounts()
    return render_template("whatsapp.html", accounts=service.listing(),
                           public_url=bool(service.settings.public_url))


@blueprint.post("/settings/whatsapp")
@login_required
def add():
    service = accounts()
    try:
        row = service.add(_form("api_url"), _form("instance", 40), _form("token", 300),
                          style=_form("style", 10) or "path", media_url=_form("media_url"),
                          label=_form("label", 64), by=current_user.login)
    except AccountProblem as exc:
        flash(text("wa.not_added", why=exc), "warning")
        return redirect(url_for("panel_whatsapp.page"))
    if row.configure_error:
        flash(text("wa.added_not_set_up", why=row.configure_error), "warning")
    else:
        how = text("wa.added_webhook" if row.receive == "webhook" else "wa.added_polled")
        flash(text("wa.added", instance=row.instance, how=how))
    if service.channel is None:
        flash(text("wa.not_running"), "warning")
    return redirect(url_for("panel_whatsapp.link_page", instance=row.instance))


@blueprint.get("/settings/whatsapp/<instance>")
@login_required
def link_page(instance: str, code: str | None = None):
    service = accounts()
    row = service.repository.get(instance) if instance.isdigit() else None
    if row is None:
        flash(text("wa.no_such"), "warning")
        return redirect(url_for("panel_whatsapp.page"))
    return render_template("whatsapp_link.html", row=row, code=code)


@blueprint.get("/settings/whatsapp/<instance>/link")
@login_required
def link_state(instance: str):
    """The page's script asks this every few seconds: the state and the QR code to show."""
    try:
        link = accounts().link(instance)
    except AccountProblem as exc:
        return jsonify(state="unknown", qr=None, note=str(exc))
    return jsonify(state=link.state, qr=link.qr, note=link.note)


@blueprint.post("/settings/whatsapp/<instance>/code")
@login_required
def phone_code(instance: str):
    try:
        code = accounts().phone_code(instance, _form("phone", 32))
    except AccountProblem as exc:
        flash(text("wa.no_code", why=exc), "warning")
        return redirect(url_for("panel_whatsapp.link_page", instance=instance))
    # Shown on this answer only (never in a flash cookie or a log).
    return link_page(instance, code=code)


@blueprint.post("/settings/whatsapp/<instance>/<action>")
@login_required
def act(instance: str, action: str):
    service = accounts()
    try:
        if action == "logout":
            done = service.logout(instance)
            flash(text("wa.logged_out") if done else text("wa.logout_failed"),
                  None if done else "warning")
        elif action == "reboot":
            done = service.reboot(instance)
            flash(text("wa.rebooting") if done else text("wa.reboot_failed"),
                  None if done else "warning")
        elif action == "setup":
            error = service.configure(instance)
            flash(text("wa.setup_failed", why=error) if error else text("wa.setup_done"),
                  "warning" if error else None)
        elif action == "remove":
            service.remove(instance)
            log.info("panel: %s removed the WhatsApp instance %s", current_user.login, instance)
            flash(text("wa.removed", instance=instance))
            return redirect(url_for("panel_whatsapp.page"))
        else:
            return redirect(url_for("panel_whatsapp.page"))
    except AccountProblem as exc:
        flash(text("wa.problem", why=exc), "warning")
    return redirect(url_for("panel_whatsapp.link_page", instance=instance))
