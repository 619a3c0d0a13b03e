"""Stored files behind short-lived signed links, on the integrations door:
`GET /media/<id>?e=<expiry>&s=<signature>` (`utils/signed.py`). A general facility:
whoever holds a link made by `utils.signed.signed_url` for `/media/<id>` with the media
links' key (`utils.keys.MEDIA_LINKS`) gets that file until the link expires (Planfix
downloading a customer's photo, a desk post showing it); an altered, expired or missing
signature is 403, an unknown file 404, and nothing about the file is told before the
signature is checked.

The file, its name and its type are the customer's: it is served by
`utils.http.file_response` — an attachment unless it is a raster image, under
`Content-Security-Policy: sandbox` and `nosniff` — so an HTML or SVG file never runs
script on this origin.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, request

from models.tgaccounts import MediaRepository
from utils.http import bound, error, file_response
from utils.signed import verify

blueprint = Blueprint("media", __name__)


@dataclass(frozen=True)
class Media:
    """What the route needs (its blueprint's context): the media links' key, the files."""
    key: bytes
    files: MediaRepository


@blueprint.get("/media/<int:media_id>")
def signed_media(media_id: int):
    media: Media = bound()
    if not verify(f"/media/{media_id}", request.args.get("e"), request.args.get("s"), media.key):
        return error(403, "forbidden")
    stored = media.files.get(media_id)
    if stored is None:
        return error(404, "not found")
    return file_response(stored.data, stored.name, stored.mime,
                         headers={"Cache-Control": "private, max-age=300"})
