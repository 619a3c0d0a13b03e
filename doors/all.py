"""The three doors in one WSGI server — what `make run` starts:

    gunicorn doors.all:app --bind BIND_HOST:WEBHOOK_PORT --bind BIND_HOST:LISTENER_PORT
                           --bind WEB_BIND:WEB_PORT

Each request goes to the door of the port it came in on (the listening socket's, which
gunicorn gives as SERVER_PORT — never the caller's Host header): the Telegram door, the
integrations door, the admin panel. One process group and one database pool serve all
three; each door keeps its own app, URL map and checks. `gunicorn webhook_server:app`,
`crm_listener:app` and `doors.panel:app` still run a door alone.
"""
from __future__ import annotations

from typing import Callable, Iterable

from config import Settings
from doors.web import lazy_app
from models.db import Database

Wsgi = Callable[[dict, Callable], Iterable[bytes]]


def create_app(settings: Settings, *, db: Database | None = None, bell=None) -> Wsgi:
    import crm_listener
    import webhook_server
    from doors import panel
    ports = (settings.webhook_port, settings.listener_port, settings.web_port)
    if len(set(ports)) != 3:
        raise ValueError("WEBHOOK_PORT, LISTENER_PORT and WEB_PORT must differ: one door per port")
    db = db or Database(settings)
    doors = {settings.webhook_port: webhook_server.create_app(settings, db=db, bell=bell),
             settings.listener_port: crm_listener.create_app(settings, db=db, bell=bell),
             settings.web_port: panel.create_app(settings, db)}

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            door = doors.get(int(environ.get("SERVER_PORT") or 0))
        except ValueError:
            door = None
        if door is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"no door on this port\n"]
        return door(environ, start_response)
    return app


# `gunicorn doors.all:app`: built on first access, never merely on import.
__getattr__ = lazy_app(globals(), create_app)
