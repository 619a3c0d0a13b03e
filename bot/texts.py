"""Every text a person reads, keyed, per language (Ukrainian first, English second)."""
from __future__ import annotations

DEFAULT_LANGUAGE = "uk"

TEXTS: dict[str, dict[str, str]] = {
    "uk": {
        "waiting_approval": "Дякуємо! Ваш запит на доступ надіслано адміністраторам. Очікуйте підтвердження.",
        "banned": "",
        "welcome": "Вітаємо, {name}! Ви підключені до KeepDesk.",
        "new_user_for_admins": "🆕 Новий користувач {name} (id {tg_id}) просить доступ.\n"
                               "/approve_{tg_id} — підтвердити\n/ban_{tg_id} — заблокувати\n"
                               "/admin_{tg_id} — зробити адміністратором",
        "post_title": "📧 Повідомлення від клієнта",
        "post_invoice": "Рахунок: {link} Клієнт: {email}",
        "post_message": "<b>Повідомлення:</b> ",
        "post_pinned_manager": "Закріплений менеджер: {name}",
        "post_continued": "(продовження, рахунок {id_i})\n",
        "post_file": "файл",
        "btn_reply": "✍ Відповісти",
        "btn_open_chat": "⚡ Відкрити чат",
        "btn_connect": "🔑 Підключитися",
        "log_error": "#ERROR {text}",
    },
    "en": {
        "waiting_approval": "Thank you! Your access request was sent to the admins. Please wait for approval.",
        "banned": "",
        "welcome": "Welcome, {name}! You are connected to KeepDesk.",
        "new_user_for_admins": "🆕 New user {name} (id {tg_id}) asks for access.\n"
                               "/approve_{tg_id} — approve\n/ban_{tg_id} — ban\n"
                               "/admin_{tg_id} — make admin",
        "post_title": "📧 Message from a client",
        "post_invoice": "Invoice: {link} Client: {email}",
        "post_message": "<b>Message:</b> ",
        "post_pinned_manager": "Pinned manager: {name}",
        "post_continued": "(continued, invoice {id_i})\n",
        "post_file": "file",
        "btn_reply": "✍ Reply",
        "btn_open_chat": "⚡ Open chat",
        "btn_connect": "🔑 Connect",
        "log_error": "#ERROR {text}",
    },
}


def language_for(user_language: str | None, forced: str | None = None) -> str:
    """BOT_LANGUAGE wins; else the user's Telegram language when we have it; else uk."""
    if forced in TEXTS:
        return forced
    code = (user_language or "").split("-")[0].lower()
    return code if code in TEXTS else DEFAULT_LANGUAGE


def text(key: str, language: str | None = None, **values: object) -> str:
    table = TEXTS.get(language or DEFAULT_LANGUAGE, TEXTS[DEFAULT_LANGUAGE])
    template = table.get(key, TEXTS[DEFAULT_LANGUAGE][key])
    return template.format(**values) if values else template
