"""Stored files behind short-lived signed links, on the integrations door:
`GET /media/<id>?e=<expiry>&s=<signature>` (`utils/signed.py`). A general facility:
whoever holds a link made by `utils.signed.signed_url` for `/media/<id>` gets that file
until the link expires (Planfix downloading a customer's photo, a desk post showing it);
an altered, expired or missing signature is 403, an unknown file 404, and nothing about
the file is told before the signature is checked.
"""
from __future__ import annotations

from urllib.parse import quote

from flask import Response, request

from models.tgaccounts import MediaRepository
from utils.http import error
from utils.signed import verify


def register(app, key: bytes, files: MediaRepository) -> None:
    def media(media_id: int):
        if not verify(f"/media/{media_id}", request.args.get("e"), request.args.get("s"), key):
            return error(403, "forbidden")
        stored = files.get(media_id)
        if stored is None:
            return error(404, "not found")
        return Response(stored.data, mimetype=stored.mime, headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(stored.name)}",
            "Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"})

    app.add_url_rule("/media/<int:media_id>", "signed_media", media, methods=["GET"])
