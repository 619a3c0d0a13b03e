"""The shop's own texts for its notification templates, for a provider that has no
approved templates (a Green-API-compatible gateway drives a person's WhatsApp: a
"template" is sent as the shop's text). WHATSAPP_TEMPLATE_TEXTS names a JSON file:

    {"appointment": "Вас записано до {1} на {2} о {3}. Відповідайте «Підтвердити» або «Відписатися».",
     "review": {"uk": "…{1}…", "ru": "…{1}…"}}

`{1}`, `{2}` … are the template's parameters in order. A template without a text is sent
as its name and its parameters ("appointment: Dr. Ivanenko · 12.03 · 10:30"), so nothing a
1C configuration asks for is lost; docs/whatsapp.md says to write the texts.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{(\d{1,2})\}")


class TemplateTexts:
    def __init__(self, texts: dict) -> None:
        self.texts = texts

    @classmethod
    def load(cls, path: Path | None) -> "TemplateTexts":
        if path is None:
            return cls({})
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"WHATSAPP_TEMPLATE_TEXTS: cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("WHATSAPP_TEMPLATE_TEXTS: a JSON object of template name → text is expected")
        return cls(data)

    def render(self, name: str, language: str, params: list[str]) -> str:
        text = self.texts.get(name)
        if isinstance(text, dict):
            text = text.get(language) or next(iter(text.values()), None)
        if not isinstance(text, str) or not text:
            return f"{name}: " + " · ".join(params) if params else name

        def fill(match: re.Match) -> str:
            index = int(match.group(1)) - 1
            return params[index] if 0 <= index < len(params) else ""
        return _PLACEHOLDER.sub(fill, text)
