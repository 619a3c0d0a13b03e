"""Every text a person reads, keyed, per language (Ukrainian first, English second).

Values are Telegram HTML templates. `text()` is the one way to fill them: every value
put into a `{placeholder}` is escaped unless it is already `Html` (built by
`bot.formatting`), and a text value is cut to a bounded length first, so no name, email
or error text can break the markup or push a message past Telegram's limits.
"""
from __future__ import annotations

from bot import formatting as fmt
from bot.formatting import Html

DEFAULT_LANGUAGE = "uk"

# Visible length (UTF-16 units) a text value may take in a template; longer ones are cut
# with "…". Values that are Html are the caller's own bounded markup and pass as they are.
VALUE_LIMIT = 256
VALUE_LIMITS = {
    "text": 3500,      # log_error: an error report
    "product": 1024,   # chat_card: a product title, as long as the CRM field
    "names": 1000,     # post_also_tapped: everyone who tapped too
    "reason": 1000,    # crm_refused: the CRM's own explanation
}

TEXTS: dict[str, dict[str, str]] = {
    "uk": {
        # Menu labels (SPEC §3)
        "messages": "🔥 Мої переписки",
        "pin_chats": "⚡ Закріплені чати",
        "stats_pin_chats": "📊 Статистика",
        "history_messages": "📁 Історія моїх переписок",
        "history_pin_chats": "📁 Історія моїх закріплених чатів",
        "history": "📁 Історія всіх чатів",
        "history_chat": "📁 Історія чата",
        "send_message_to_chat": "📩 Написати повідомлення",
        "send_status_read": "✅ Надіслати статус \"Прочитано\"",
        "edit_status_activate_key": "✅ Змінити статус діалогу",
        "un_status_chat": "👤 Зняти з мене закріп",
        "back": "◀ Назад",
        "back_to_chat": "◀ Повернутися до чату",
        "prev": "◀",
        "next": "▶",
        # Access
        "waiting_approval": "Дякуємо! Ваш запит на доступ надіслано адміністраторам. Очікуйте підтвердження.",
        "press_start": "Натисніть /start, щоб попросити доступ.",
        "no_access": "Немає доступу.",
        "welcome": "Вітаємо, {name}! Ви підключені до KeepDesk.",
        "main_menu": "Головне меню.",
        "new_user_for_admins": "🆕 Новий користувач {name} (id {tg_id}) просить доступ.\n"
                               "/approve_{tg_id} — підтвердити\n/ban_{tg_id} — заблокувати\n"
                               "/admin_{tg_id} — зробити адміністратором",
        "you_are_approved": "✅ Доступ підтверджено. Ласкаво просимо до KeepDesk!",
        "you_are_admin": "⭐ Вам надано права адміністратора.",
        # Client message posts
        "post_title": "📧 Повідомлення від клієнта",
        "post_title_channel": "{icon} {channel} · Повідомлення від клієнта {customer}",
        "post_invoice": "Рахунок: {link} Клієнт: {email}",
        "post_message": "<b>Повідомлення:</b> ",
        "post_pinned_manager": "Закріплений менеджер: {name}",
        "post_continued": "(продовження, рахунок {id_i})\n",
        "post_file": "файл",
        "post_manager": "Менеджер: {name}",
        "post_also_tapped": "Також хотіли відповісти: {names}",
        "post_answered": "✅ Клієнту вже відповіли",
        "btn_reply": "✍ Відповісти",
        "btn_open_chat": "⚡ Відкрити чат",
        "btn_connect": "🔑 Підключитися",
        # Claim outcomes
        "claimed": "✅ Чат {id_i} закріплено за вами.",
        "already_mine": "Цей чат уже ваш.",
        "taken_by": "Цей чат закріплено за {name}.",
        "already_answered": "На це повідомлення вже відповіли.",
        "you_answer": "Ви відповідаєте на ордер #{id_i} ({email})",
        "busy_try_again": "Зайнято, спробуйте ще раз за мить.",
        "stale_button": "Ця кнопка застаріла.",
        # Chat card and history
        "chat_card": "💬 Чат <b>#{id_i}</b>\nКлієнт: {email}\nТовар: {product}\n{pin_line}",
        "chat_pinned_to": "Закріплено за: {name}",
        "chat_not_pinned": "Ні за ким не закріплено",
        "task_status": "Статус задачі: {status}",
        "status_new": "нова",
        "status_in_work": "в роботі",
        "status_done": "виконана",
        "status_archive": "в архіві",
        "history_title": "📁 Історія чата #{id_i} (сторінка {page})",
        "history_empty": "Повідомлень ще немає.",
        "from_client": "👤 Клієнт",
        "from_shop": "🏪 Магазин",
        "from_shop_auto": "🏪 Магазин · 🤖 автоматично",
        "image": "🖼 зображення",
        "file": "📎 файл",
        "truncated": "… (повністю — у CRM)",
        "unknown_chat": "Чат {id_i} не знайдено.",
        # Lists
        "list_empty": "Тут поки порожньо.",
        "list_title_messages": "🔥 Мої переписки (сторінка {page} з {pages})",
        "list_title_pin_chats": "⚡ Закріплені чати (сторінка {page} з {pages})",
        "list_title_history_messages": "📁 Історія моїх переписок (сторінка {page} з {pages})",
        "list_title_history_pin_chats": "📁 Історія моїх закріплених чатів (сторінка {page} з {pages})",
        "list_title_history": "📁 Історія всіх чатів (сторінка {page} з {pages})",
        "list_title_stats": "📊 Відкриті задачі (сторінка {page} з {pages})\n★ ніхто не взяв  □ в роботі  ● потрібна перевірка  ✅ виконана (видно добу)",
        # Writing to the client
        "choose_chat_first": "Спершу оберіть чат: відкрийте його або натисніть «✍ Відповісти».",
        "send_mode_on": "📩 Напишіть повідомлення клієнту (текст, фото або файл).",
        "sent_ok": "✅ Надіслано клієнту (ордер #{id_i}).",
        "too_long": "❌ Повідомлення задовге: {length} символів, CRM приймає не більше {limit}. Нічого не надіслано.",
        "crm_refused": "❌ CRM не прийняла повідомлення: {reason}",
        "crm_unavailable": "❌ CRM зараз недоступна, повідомлення не надіслано. Спробуйте ще раз трохи згодом.",
        "unsupported_content": "Цей тип повідомлення не підтримується: надсилайте текст, фото або файл.",
        "file_too_big": "❌ Файл завеликий для Telegram-бота (понад 20 МБ).",
        "read_ok": "✅ Статус «Прочитано» надіслано.",
        "unpinned": "👤 Закріп з чату #{id_i} знято.",
        "unpin_task_refused": "Закріп задачі знімається автоматично; змініть статус задачі.",
        "not_your_pin": "Цей чат не закріплено за вами.",
        "status_changed": "Статус задачі #{id_i}: {status}.",
        "not_a_task": "Це не задача.",
        # Admin
        "approved": "✅ {name} тепер менеджер.",
        "banned_done": "⛔ {name} заблоковано.",
        "made_admin": "⭐ {name} тепер адміністратор.",
        "bad_command": "Невірна команда. Приклад: {example}",
        "cannot_change_self": "Свою власну роль змінити не можна.",
        "taken_over_from_you": "Чат #{id_i} тепер веде адміністратор {name}.",
        "users_title": "👥 Користувачі (сторінка {page} з {pages})",
        "role_pending": "очікує",
        "role_manager": "менеджер",
        "role_admin": "адмін",
        "role_banned": "заблокований",
        "connected_users": "Закріпи чату #{id_i}:",
        "no_pins": "Закріпів не було.",
        "clean_started": "🧹 Очищення запущено у фоні; звіт надійде сюди.",
        "clean_report": "🧹 Очищення завершено: видалено постів у спільному чаті — {posts} "
                        "(не вдалося — {failed}); видалено збережених повідомлень — {messages}, "
                        "записів про пости — {maps}, завершених задач черги — {jobs}.",
        # Log chat
        "log_error": "#ERROR {text}",
        "log_change_pin": "#CHANGE_PIN {who}: {what} (чат #{id_i})",
        "change_pin_claimed": "закріпив чат",
        "change_pin_removed": "зняв закріп",
        "change_pin_taken_over": "забрав чат у {previous}",
        "change_pin_banned": "закріп знято: менеджера заблоковано",
        # Failures: nothing fails silently (SPEC §6)
        "log_error_cause": "#ERROR {cause} (×{count}) {retry}\n{detail}",
        "answer_waits_for_crm": "❌ CRM зараз недоступна; повідомлення надішлеться автоматично, "
                                "щойно вона запрацює. Не надсилайте його ще раз.",
        "answer_failed": "❌ Повідомлення не надіслано клієнту (ордер #{id_i}); адміністраторів повідомлено.",
        "read_waits_for_crm": "❌ CRM зараз недоступна; статус «Прочитано» буде надіслано автоматично.",
        "read_failed": "❌ Статус «Прочитано» не надіслано; адміністраторів повідомлено.",
        "not_your_task": "Змінити статус задачі може лише той, за ким вона закріплена, або адміністратор.",
        "reply_to_unknown": "Це повідомлення не про чат клієнта: відповідайте на пост клієнта або на картку чату.",
        "update_failed": "⚠️ Не вдалося обробити ваше повідомлення; адміністраторів повідомлено. "
                         "Спробуйте ще раз трохи згодом.",
        "errors_none": "✅ Помилок немає.",
        "errors_title": "⚠️ Помилки: {total} (показано {shown}, найновіші першими)",
        "errors_line": "/retry_{id} · {kind} · {when}\n{error}",
        "retry_queued": "🔁 Завдання {id} знову в черзі.",
        "retry_unknown": "Завдання {id} не знайдено.",
        "retry_not_dead": "Завдання {id} не є помилкою (стан: {status}).",
        # WhatsApp
        "wa_answer_waits": "❌ WhatsApp зараз недоступний; повідомлення надішлеться автоматично, "
                           "щойно він запрацює. Не надсилайте його ще раз.",
        "wa_err_window": "❌ Не надіслано (чат #{id_i}): минуло понад 24 години від останнього "
                         "повідомлення клієнта, WhatsApp дозволяє лише затверджений шаблон.",
        "wa_err_undeliverable": "❌ WhatsApp не може доставити повідомлення (чат #{id_i}): у клієнта "
                                "немає WhatsApp, застарілий застосунок або він заблокував магазин.",
        "wa_err_refused": "❌ WhatsApp не прийняв повідомлення (чат #{id_i}): {reason}",
        "wa_err_template": "❌ WhatsApp не прийняв шаблон (чат #{id_i}): {reason}. Адміністраторів повідомлено.",
        "wa_err_token": "❌ WhatsApp відхилив ключ доступу магазину; адміністраторів повідомлено.",
        "wa_failed_undeliverable": "❌ WhatsApp не доставив повідомлення (чат #{id_i}): у клієнта немає "
                                   "WhatsApp, застарілий застосунок або він заблокував магазин.",
        "wa_failed_window": "❌ WhatsApp не доставив повідомлення (чат #{id_i}): минуло понад 24 години "
                            "від останнього повідомлення клієнта; надішліть шаблон.",
        "wa_failed_other": "❌ WhatsApp не доставив повідомлення (чат #{id_i}): {reason}",
        "wa_window_closed": "⏰ Клієнт писав понад 24 години тому: WhatsApp дозволяє лише затверджений "
                            "шаблон. Оберіть шаблон, щоб відновити розмову:",
        "wa_window_no_templates": "⏰ Клієнт писав понад 24 години тому: WhatsApp дозволяє лише "
                                  "затверджений шаблон, а шаблонів не налаштовано (WHATSAPP_TEMPLATES).",
        "window_closed_not_sent": "⏰ Не надіслано: клієнт писав понад 24 години тому, а WhatsApp дозволяє "
                                  "лише затверджений шаблон. Напишіть у чат — бот запропонує шаблони.",
        "wa_template_params": "📋 Шаблон «{name}»: надішліть {count} значень, кожне з нового рядка.",
        "wa_template_wrong_count": "❌ Шаблон «{name}» має {count} параметрів, а надіслано {given}. "
                                   "Нічого не надіслано; спробуйте ще раз.",
        "wa_template_unknown": "Цей шаблон більше не налаштовано.",
        "wa_template_chosen": "📋 Шаблон «{name}» надсилається.",
        "mark_sent": "✓",
        "mark_delivered": "✓✓",
        "mark_read": "✓✓ прочитано",
        "mark_failed": "❌ не доставлено: {reason}",
        "post_media_too_big": "📎 {name}: файл не вдалося показати тут ({reason}); відкрийте його у WhatsApp магазину.",
        # desk: SLA, hand-over, finding, canned replies, notes, tasks, order, chores
        "find_chat": "🔎 Пошук чату",
        "shift_menu": "🕘 Моя зміна",
        "shift_on_now": "☀️ Ви на зміні.",
        "shift_off_now": "🌙 Ви не на зміні.",
        "btn_shift_off": "🌙 Завершити зміну",
        "btn_shift_on": "☀️ Почати зміну",
        "shift_started": "☀️ Зміну розпочато: нові чати знову можуть передавати вам.",
        "shift_ended": "🌙 Зміну завершено. Ваші чати запропоновано колегам: {offered}.",
        "offer_off_shift": "🌙 {name} не на зміні. Чат #{id_i} ({customer}, {product}) — хто візьме?",
        "btn_take_offer": "🙋 Взяти чат",
        "offer_taken": "🙋 Чат #{id_i} взяв(ла) {name}.",
        "offer_holder_back": "{name} знову на зміні — чат лишається за ними.",
        "btn_handover": "🔁 Передати",
        "handover_title": "🔁 Кому передати чат #{id_i}? (у дужках — відкриті чати)",
        "handover_nobody": "Немає колег на зміні.",
        "handover_person": "{name} ({load})",
        "handover_not_holder": "Передати чат може лише той, за ким він закріплений, або адміністратор.",
        "handover_off_shift": "{name} зараз не на зміні — оберіть іншого колегу.",
        "handover_not_manager": "{name} не може брати чати (заблокований або не підтверджений).",
        "handover_self": "Цей чат уже ваш.",
        "handed_done": "🔁 Чат #{id_i} передано {name}.",
        "handed_to_you": "🔁 {giver} передав(ла) вам чат #{id_i} ({customer}).",
        "handed_from_you": "🔁 Чат #{id_i} тепер веде {to} (передав(ла) {giver}).",
        "log_handover": "#CHANGE_PIN {who}: передав(ла) чат від {previous} до {to} (чат #{id_i})",
        "offer_taken_from_you": "🙋 {to} взяв(ла) ваш чат #{id_i}, поки ви не на зміні.",
        "log_offer_taken": "#CHANGE_PIN {who}: взяв(ла) чат {previous}, що не на зміні (чат #{id_i})",
        "btn_join": "👀 Приєднатися",
        "btn_takeover": "⚡ Забрати собі",
        "btn_leave": "🚪 Вийти з чату",
        "joined": "👀 Ви поруч з {name} у чаті #{id_i}: бачите нові повідомлення клієнта й можете відповідати.",
        "left_chat": "🚪 Ви вийшли з чату.",
        "join_nobody": "Чат ні за ким не закріплено — просто візьміть його.",
        "join_own": "Цей чат закріплено за вами.",
        "admin_joined_you": "👀 Адміністратор {admin} приєднався до чату #{id_i} і може відповідати поруч з вами.",
        "log_join": "#CHANGE_PIN {who}: приєднався(лася) до чату поруч з {holder} (чат #{id_i})",
        "sla_remind_holder": "⏰ Клієнт у чаті #{id_i} чекає на відповідь уже {minutes} хв.",
        "sla_remind_shared": "⏰ Клієнт чекає на відповідь уже {minutes} хв: чат #{id_i} ({customer}).",
        "post_taken_back_timeout": "⏰ Повернуто у спільний чат: {name} не відповів(ла) клієнту за {minutes} хв.",
        "post_taken_back_off_shift": "⏰ Повернуто у спільний чат: {name} не на зміні, клієнт чекає {minutes} хв.",
        "sla_taken_from_you_timeout": "⏰ Чат #{id_i} повернуто у спільний чат: клієнт чекав відповіді {minutes} хв.",
        "sla_taken_from_you_off_shift": "⏰ Чат #{id_i} повернуто у спільний чат, бо ви не на зміні (клієнт чекав {minutes} хв).",
        "log_takeback_timeout": "#CHANGE_PIN {who}: чат повернуто у спільний чат — клієнт чекав {minutes} хв (чат #{id_i})",
        "log_takeback_off_shift": "#CHANGE_PIN {who}: чат повернуто у спільний чат — не на зміні, клієнт чекав {minutes} хв (чат #{id_i})",
        "btn_open_answered": "👉 Відкрити чат",
        "search_prompt": "🔎 Надішліть номер замовлення, e-mail, телефон або слова з листування.",
        "search_too_short": "🔎 Запит закороткий: потрібно щонайменше {limit} символи.",
        "search_nothing": "🔎 Нічого не знайдено.",
        "search_results": "🔎 «{query}»: знайдено чатів — {count}",
        "mode_cancelled": "Скасовано.",
        "btn_note": "📝 Нотатка",
        "note_prompt": "📝 Напишіть нотатку до чату #{id_i}. Її бачать лише колеги, клієнту вона не надсилається.",
        "note_saved": "📝 Нотатку до чату #{id_i} збережено (клієнт її не бачить).",
        "note_too_long": "❌ Нотатка задовга: {length} символів, можна не більше {limit}. Нічого не збережено.",
        "note_empty": "❌ Порожня нотатка не зберігається.",
        "note_no_chat": "❌ Спершу відкрийте чат, до якого нотатка (або такого чату немає). Нічого не збережено.",
        "card_notes": "📝 Нотатки:",
        "history_notes": "📝 Нотатки колег:",
        "note_line": "• {who} ({when}): {text}",
        "card_order": "🧾 Замовлення: {order}",
        "card_delivery": "🚚 Доставка: {delivery}",
        "card_tracking": "ТТН {ttn}",
        "card_watchers": "👀 Поруч: {names}",
        "btn_canned": "💬 Шаблони",
        "canned_title_chat": "💬 Шаблони відповідей для чату #{id_i}",
        "canned_title_admin": "💬 Шаблони відповідей: {total}. 🗑 — видалити.",
        "canned_line": "• <b>{title}</b>: {text}",
        "canned_empty": "Шаблонів ще немає.",
        "btn_canned_add": "➕ Додати шаблон",
        "canned_add_prompt": "➕ Надішліть шаблон: перший рядок — назва, далі — текст. Можна фото чи файл з підписом. "
                             "Підстановки: {names}.",
        "canned_saved": "✅ Шаблон «{title}» збережено.",
        "canned_unknown_placeholder": "❌ Невідома підстановка {name}. Можна: {names}. Нічого не збережено.",
        "canned_bad_braces": "❌ Непарна фігурна дужка. Підстановки пишуться так: {names}. Нічого не збережено.",
        "canned_too_long": "❌ Задовгий шаблон: не більше {limit} символів. Нічого не збережено.",
        "canned_empty_reply": "❌ Порожній шаблон. Нічого не збережено.",
        "canned_deleted": "🗑 Шаблон видалено.",
        "draft_title": "📝 Чернетка для чату #{id_i}:",
        "draft_file": "📎 + {name}",
        "draft_hint": "✅ — надіслати як є; щоб змінити — скопіюйте, виправте й надішліть повідомленням.",
        "btn_draft_send": "✅ Надіслати",
        "btn_draft_copy": "📋 Копіювати",
        "draft_sending": "✅ Надсилаю клієнту…",
        "draft_no_chat": "Спершу відкрийте чат, для якого шаблон.",
        "draft_inline_hint": "📝 Це чернетка для чату #{id_i}, клієнту її не надіслано. ✅ — надіслати як є, "
                             "або змініть і надішліть як звичайне повідомлення.",
        "age_minutes": "{n} хв",
        "age_hours": "{n} год",
        "age_days": "{n} дн",
        "task_returned_to_you": "🔁 Задачу #{id_i} знову відкрито ({by}) — вона знову ваша.",
        "pin_expired": "⌛ Закріп чату #{id_i} знято: {hours} год без вашої відповіді. Нові повідомлення клієнта "
                       "підуть у спільний чат.",
        "daily_clean_report": "🧹 Щоденне очищення: видалено постів у спільному чаті — {posts} (не вдалося — {failed}); "
                              "повідомлень — {messages}, записів про пости — {maps}, завершених задач черги — {jobs}.",
        "cmd_start": "Головне меню",
        "cmd_find": "Пошук чату: номер, e-mail, телефон або слова",
        "cmd_shift": "Моя зміна: почати або завершити",
        "cmd_note": "Нотатка до відкритого чату",
        "cmd_open_chat": "Відкрити чат за номером: /open_chat_N",
        "cmd_replies": "Шаблони відповідей",
        "cmd_all_users": "Усі користувачі",
        "cmd_errors": "Помилки й повтор",
        "cmd_clean": "Очищення зараз",
        "cmd_web_access": "Вхід до веб-панелі: одноразовий код",
        # WhatsApp gateways
        "wa_err_unsupported": "❌ Не надіслано (чат #{id_i}): цей провайдер WhatsApp цього не вміє ({reason}).",
        # the admin panel
        "web_access_code": "🔐 Вхід до панелі адміністратора\nЛогін: <code>{login}</code>\n"
                           "Одноразовий код: <code>{code}</code> (діє 15 хвилин)\n"
                           "Задайте пароль на сторінці {url} (через SSH-тунель або ваш HTTPS-проксі).",
        "web_access_private_only": "🔐 Надішліть /web_access боту в особистому чаті.",
    },
    "en": {
        "messages": "🔥 My conversations",
        "pin_chats": "⚡ Pinned chats",
        "stats_pin_chats": "📊 Statistics",
        "history_messages": "📁 History of my conversations",
        "history_pin_chats": "📁 History of my pinned chats",
        "history": "📁 History of all chats",
        "history_chat": "📁 Chat history",
        "send_message_to_chat": "📩 Write a message",
        "send_status_read": "✅ Send \"Read\" status",
        "edit_status_activate_key": "✅ Change dialogue status",
        "un_status_chat": "👤 Unpin me",
        "back": "◀ Back",
        "back_to_chat": "◀ Back to the chat",
        "prev": "◀",
        "next": "▶",
        "waiting_approval": "Thank you! Your access request was sent to the admins. Please wait for approval.",
        "press_start": "Press /start to ask for access.",
        "no_access": "No access.",
        "welcome": "Welcome, {name}! You are connected to KeepDesk.",
        "main_menu": "Main menu.",
        "new_user_for_admins": "🆕 New user {name} (id {tg_id}) asks for access.\n"
                               "/approve_{tg_id} — approve\n/ban_{tg_id} — ban\n"
                               "/admin_{tg_id} — make admin",
        "you_are_approved": "✅ Access approved. Welcome to KeepDesk!",
        "you_are_admin": "⭐ You are now an admin.",
        "post_title": "📧 Message from a client",
        "post_title_channel": "{icon} {channel} · Message from client {customer}",
        "post_invoice": "Invoice: {link} Client: {email}",
        "post_message": "<b>Message:</b> ",
        "post_pinned_manager": "Pinned manager: {name}",
        "post_continued": "(continued, invoice {id_i})\n",
        "post_file": "file",
        "post_manager": "Manager: {name}",
        "post_also_tapped": "Also wanted to answer: {names}",
        "post_answered": "✅ The client has been answered already",
        "btn_reply": "✍ Reply",
        "btn_open_chat": "⚡ Open chat",
        "btn_connect": "🔑 Connect",
        "claimed": "✅ Chat {id_i} is pinned to you.",
        "already_mine": "This chat is already yours.",
        "taken_by": "This chat is pinned to {name}.",
        "already_answered": "This message has been answered already.",
        "you_answer": "You are answering order #{id_i} ({email})",
        "busy_try_again": "Busy, try again in a moment.",
        "stale_button": "This button is out of date.",
        "chat_card": "💬 Chat <b>#{id_i}</b>\nClient: {email}\nProduct: {product}\n{pin_line}",
        "chat_pinned_to": "Pinned to: {name}",
        "chat_not_pinned": "Not pinned to anybody",
        "task_status": "Task status: {status}",
        "status_new": "new",
        "status_in_work": "in work",
        "status_done": "done",
        "status_archive": "archived",
        "history_title": "📁 History of chat #{id_i} (page {page})",
        "history_empty": "No messages yet.",
        "from_client": "👤 Client",
        "from_shop": "🏪 Shop",
        "from_shop_auto": "🏪 Shop · 🤖 automatic",
        "image": "🖼 image",
        "file": "📎 file",
        "truncated": "… (in full in the CRM)",
        "unknown_chat": "Chat {id_i} not found.",
        "list_empty": "Nothing here yet.",
        "list_title_messages": "🔥 My conversations (page {page} of {pages})",
        "list_title_pin_chats": "⚡ Pinned chats (page {page} of {pages})",
        "list_title_history_messages": "📁 History of my conversations (page {page} of {pages})",
        "list_title_history_pin_chats": "📁 History of my pinned chats (page {page} of {pages})",
        "list_title_history": "📁 History of all chats (page {page} of {pages})",
        "list_title_stats": "📊 Open tasks (page {page} of {pages})\n★ nobody took it  □ in work  ● needs checking  ✅ done (shown a day)",
        "choose_chat_first": "Choose a chat first: open it or tap \"✍ Reply\".",
        "send_mode_on": "📩 Write your message to the client (text, photo or file).",
        "sent_ok": "✅ Sent to the client (order #{id_i}).",
        "too_long": "❌ The message is too long: {length} characters, the CRM accepts at most {limit}. Nothing was sent.",
        "crm_refused": "❌ The CRM refused the message: {reason}",
        "crm_unavailable": "❌ The CRM is unavailable right now; nothing was sent. Please try again shortly.",
        "unsupported_content": "This kind of message is not supported: send text, a photo or a file.",
        "file_too_big": "❌ The file is too big for a Telegram bot (over 20 MB).",
        "read_ok": "✅ \"Read\" status sent.",
        "unpinned": "👤 Chat #{id_i} is no longer pinned to you.",
        "unpin_task_refused": "A task's pin ends by itself; change the task status instead.",
        "not_your_pin": "This chat is not pinned to you.",
        "status_changed": "Task #{id_i} status: {status}.",
        "not_a_task": "This is not a task.",
        "approved": "✅ {name} is a manager now.",
        "banned_done": "⛔ {name} is banned.",
        "made_admin": "⭐ {name} is an admin now.",
        "bad_command": "Wrong command. Example: {example}",
        "cannot_change_self": "You cannot change your own role.",
        "taken_over_from_you": "Chat #{id_i} is now handled by the admin {name}.",
        "users_title": "👥 Users (page {page} of {pages})",
        "role_pending": "pending",
        "role_manager": "manager",
        "role_admin": "admin",
        "role_banned": "banned",
        "connected_users": "Pins of chat #{id_i}:",
        "no_pins": "No pins yet.",
        "clean_started": "🧹 Cleaning runs in the background; the report will come here.",
        "clean_report": "🧹 Cleaning done: shared chat posts deleted — {posts} (failed — {failed}); "
                        "stored messages purged — {messages}, post records — {maps}, "
                        "finished queue jobs — {jobs}.",
        "log_error": "#ERROR {text}",
        "log_change_pin": "#CHANGE_PIN {who}: {what} (chat #{id_i})",
        "change_pin_claimed": "pinned the chat",
        "change_pin_removed": "removed the pin",
        "change_pin_taken_over": "took the chat over from {previous}",
        "change_pin_banned": "pin removed: the manager was banned",
        "log_error_cause": "#ERROR {cause} (×{count}) {retry}\n{detail}",
        "answer_waits_for_crm": "❌ The CRM is unavailable right now; the message will be sent "
                                "automatically when it is back. Do not send it again.",
        "answer_failed": "❌ The message was not sent to the client (order #{id_i}); the admins were told.",
        "read_waits_for_crm": "❌ The CRM is unavailable right now; the \"Read\" status will be sent automatically.",
        "read_failed": "❌ The \"Read\" status was not sent; the admins were told.",
        "not_your_task": "Only the manager holding the task, or an admin, may change its status.",
        "reply_to_unknown": "This message is about no client chat: reply to a client's post or to a chat card.",
        "update_failed": "⚠️ Your message could not be handled; the admins were told. Please try again later.",
        "errors_none": "✅ No errors.",
        "errors_title": "⚠️ Errors: {total} (showing {shown}, newest first)",
        "errors_line": "/retry_{id} · {kind} · {when}\n{error}",
        "retry_queued": "🔁 Job {id} is queued again.",
        "retry_unknown": "Job {id} not found.",
        "retry_not_dead": "Job {id} is not an error (state: {status}).",
        # WhatsApp
        "wa_answer_waits": "❌ WhatsApp is unavailable right now; the message will be sent "
                           "automatically when it is back. Do not send it again.",
        "wa_err_window": "❌ Not sent (chat #{id_i}): more than 24 hours have passed since the client's "
                         "last message; WhatsApp allows only an approved template.",
        "wa_err_undeliverable": "❌ WhatsApp cannot deliver the message (chat #{id_i}): the client has no "
                                "WhatsApp, an outdated app, or blocked the shop.",
        "wa_err_refused": "❌ WhatsApp refused the message (chat #{id_i}): {reason}",
        "wa_err_template": "❌ WhatsApp refused the template (chat #{id_i}): {reason}. The admins were told.",
        "wa_err_token": "❌ WhatsApp refused the shop's access token; the admins were told.",
        "wa_failed_undeliverable": "❌ WhatsApp did not deliver the message (chat #{id_i}): the client has no "
                                   "WhatsApp, an outdated app, or blocked the shop.",
        "wa_failed_window": "❌ WhatsApp did not deliver the message (chat #{id_i}): more than 24 hours "
                            "since the client's last message; send a template.",
        "wa_failed_other": "❌ WhatsApp did not deliver the message (chat #{id_i}): {reason}",
        "wa_window_closed": "⏰ The client wrote more than 24 hours ago: WhatsApp allows only an approved "
                            "template. Choose one to reopen the conversation:",
        "wa_window_no_templates": "⏰ The client wrote more than 24 hours ago: WhatsApp allows only an "
                                  "approved template, and none is configured (WHATSAPP_TEMPLATES).",
        "window_closed_not_sent": "⏰ Not sent: the client wrote more than 24 hours ago and WhatsApp allows "
                                  "only an approved template. Write in the chat and the bot offers the templates.",
        "wa_template_params": "📋 Template \"{name}\": send {count} values, one per line.",
        "wa_template_wrong_count": "❌ Template \"{name}\" takes {count} parameters, {given} were sent. "
                                   "Nothing was sent; try again.",
        "wa_template_unknown": "This template is no longer configured.",
        "wa_template_chosen": "📋 Sending the template \"{name}\".",
        "mark_sent": "✓",
        "mark_delivered": "✓✓",
        "mark_read": "✓✓ read",
        "mark_failed": "❌ not delivered: {reason}",
        "post_media_too_big": "📎 {name}: the file could not be shown here ({reason}); open it in the shop's WhatsApp.",
        # desk: SLA, hand-over, finding, canned replies, notes, tasks, order, chores
        "find_chat": "🔎 Find a chat",
        "shift_menu": "🕘 My shift",
        "shift_on_now": "☀️ You are on shift.",
        "shift_off_now": "🌙 You are off shift.",
        "btn_shift_off": "🌙 End my shift",
        "btn_shift_on": "☀️ Start my shift",
        "shift_started": "☀️ Shift started: colleagues can hand you chats again.",
        "shift_ended": "🌙 Shift ended. Your chats were offered to colleagues: {offered}.",
        "offer_off_shift": "🌙 {name} is off shift. Chat #{id_i} ({customer}, {product}) — who takes it?",
        "btn_take_offer": "🙋 Take the chat",
        "offer_taken": "🙋 {name} took chat #{id_i}.",
        "offer_holder_back": "{name} is back on shift — the chat stays with them.",
        "btn_handover": "🔁 Hand over",
        "handover_title": "🔁 Hand chat #{id_i} to whom? (open chats in brackets)",
        "handover_nobody": "No colleague is on shift.",
        "handover_person": "{name} ({load})",
        "handover_not_holder": "Only the manager holding the chat, or an admin, may hand it over.",
        "handover_off_shift": "{name} is off shift now — choose another colleague.",
        "handover_not_manager": "{name} cannot take chats (banned or not approved).",
        "handover_self": "This chat is already yours.",
        "handed_done": "🔁 Chat #{id_i} handed to {name}.",
        "handed_to_you": "🔁 {giver} handed you chat #{id_i} ({customer}).",
        "handed_from_you": "🔁 Chat #{id_i} is now handled by {to} (handed over by {giver}).",
        "log_handover": "#CHANGE_PIN {who}: handed the chat from {previous} to {to} (chat #{id_i})",
        "offer_taken_from_you": "🙋 {to} took your chat #{id_i} while you are off shift.",
        "log_offer_taken": "#CHANGE_PIN {who}: took the chat of {previous}, who is off shift (chat #{id_i})",
        "btn_join": "👀 Join",
        "btn_takeover": "⚡ Take it over",
        "btn_leave": "🚪 Leave the chat",
        "joined": "👀 You are beside {name} in chat #{id_i}: you see the client's new messages and may answer.",
        "left_chat": "🚪 You left the chat.",
        "join_nobody": "Nobody holds this chat — just take it.",
        "join_own": "This chat is pinned to you.",
        "admin_joined_you": "👀 The admin {admin} joined chat #{id_i} and may answer beside you.",
        "log_join": "#CHANGE_PIN {who}: joined the chat beside {holder} (chat #{id_i})",
        "sla_remind_holder": "⏰ The client in chat #{id_i} has been waiting for an answer for {minutes} min.",
        "sla_remind_shared": "⏰ A client has been waiting for {minutes} min: chat #{id_i} ({customer}).",
        "post_taken_back_timeout": "⏰ Back in the shared chat: {name} did not answer the client within {minutes} min.",
        "post_taken_back_off_shift": "⏰ Back in the shared chat: {name} is off shift, the client has waited {minutes} min.",
        "sla_taken_from_you_timeout": "⏰ Chat #{id_i} went back to the shared chat: the client waited {minutes} min for an answer.",
        "sla_taken_from_you_off_shift": "⏰ Chat #{id_i} went back to the shared chat as you are off shift (the client waited {minutes} min).",
        "log_takeback_timeout": "#CHANGE_PIN {who}: chat back in the shared chat — the client waited {minutes} min (chat #{id_i})",
        "log_takeback_off_shift": "#CHANGE_PIN {who}: chat back in the shared chat — off shift, the client waited {minutes} min (chat #{id_i})",
        "btn_open_answered": "👉 Open chat",
        "search_prompt": "🔎 Send an order number, an e-mail, a phone or words of the conversation.",
        "search_too_short": "🔎 The query is too short: at least {limit} characters.",
        "search_nothing": "🔎 Nothing found.",
        "search_results": "🔎 “{query}”: chats found — {count}",
        "mode_cancelled": "Cancelled.",
        "btn_note": "📝 Note",
        "note_prompt": "📝 Write a note on chat #{id_i}. Only colleagues see it; it is never sent to the client.",
        "note_saved": "📝 Note on chat #{id_i} saved (the client does not see it).",
        "note_too_long": "❌ The note is too long: {length} characters, at most {limit}. Nothing was saved.",
        "note_empty": "❌ An empty note is not saved.",
        "note_no_chat": "❌ Open the chat the note is about first (or there is no such chat). Nothing was saved.",
        "card_notes": "📝 Notes:",
        "history_notes": "📝 Colleagues' notes:",
        "note_line": "• {who} ({when}): {text}",
        "card_order": "🧾 Order: {order}",
        "card_delivery": "🚚 Delivery: {delivery}",
        "card_tracking": "tracking {ttn}",
        "card_watchers": "👀 Beside: {names}",
        "btn_canned": "💬 Canned replies",
        "canned_title_chat": "💬 Canned replies for chat #{id_i}",
        "canned_title_admin": "💬 Canned replies: {total}. 🗑 — delete.",
        "canned_line": "• <b>{title}</b>: {text}",
        "canned_empty": "No canned replies yet.",
        "btn_canned_add": "➕ Add a reply",
        "canned_add_prompt": "➕ Send the reply: the first line is its title, then its text. A photo or a file with a "
                             "caption works too. Placeholders: {names}.",
        "canned_saved": "✅ Reply “{title}” saved.",
        "canned_unknown_placeholder": "❌ Unknown placeholder {name}. Known ones: {names}. Nothing was saved.",
        "canned_bad_braces": "❌ An unpaired curly brace. Placeholders look like this: {names}. Nothing was saved.",
        "canned_too_long": "❌ The reply is too long: at most {limit} characters. Nothing was saved.",
        "canned_empty_reply": "❌ An empty reply. Nothing was saved.",
        "canned_deleted": "🗑 Reply deleted.",
        "draft_title": "📝 Draft for chat #{id_i}:",
        "draft_file": "📎 + {name}",
        "draft_hint": "✅ — send as it is; to change it, copy it, edit and send it as a message.",
        "btn_draft_send": "✅ Send",
        "btn_draft_copy": "📋 Copy",
        "draft_sending": "✅ Sending to the client…",
        "draft_no_chat": "Open the chat the reply is for first.",
        "draft_inline_hint": "📝 This is a draft for chat #{id_i}; it was not sent to the client. ✅ — send it as it "
                             "is, or change it and send it as an ordinary message.",
        "age_minutes": "{n} min",
        "age_hours": "{n} h",
        "age_days": "{n} d",
        "task_returned_to_you": "🔁 Task #{id_i} was reopened ({by}) — it is yours again.",
        "pin_expired": "⌛ Chat #{id_i} is no longer pinned to you: {hours} h without your answer. The client's new "
                       "messages go to the shared chat.",
        "daily_clean_report": "🧹 Daily cleaning: shared chat posts deleted — {posts} (failed — {failed}); messages — "
                              "{messages}, post records — {maps}, finished queue jobs — {jobs}.",
        "cmd_start": "Main menu",
        "cmd_find": "Find a chat: number, e-mail, phone or words",
        "cmd_shift": "My shift: start or end it",
        "cmd_note": "A note on the open chat",
        "cmd_open_chat": "Open a chat by its number: /open_chat_N",
        "cmd_replies": "Canned replies",
        "cmd_all_users": "All users",
        "cmd_errors": "Errors and retry",
        "cmd_clean": "Clean now",
        "cmd_web_access": "Into the web panel: a one-time code",
        # WhatsApp gateways
        "wa_err_unsupported": "❌ Not sent (chat #{id_i}): {reason}.",
        # the admin panel
        "web_access_code": "🔐 The admin panel\nLogin: <code>{login}</code>\n"
                           "One-time code: <code>{code}</code> (valid 15 minutes)\n"
                           "Set your password at {url} (through an SSH tunnel or your HTTPS proxy).",
        "web_access_private_only": "🔐 Send /web_access to the bot in a private chat.",
    },
}

# Menu keys whose labels, in any language, are main-menu buttons.
MENU_KEYS = ("messages", "pin_chats", "stats_pin_chats", "history_messages",
             "history_pin_chats", "history")


def language_for(user_language: str | None, forced: str | None = None) -> str:
    """BOT_LANGUAGE wins; else the user's Telegram language when we have it; else uk."""
    if forced in TEXTS:
        return forced
    code = (user_language or "").split("-")[0].lower()
    return code if code in TEXTS else DEFAULT_LANGUAGE


def text(key: str, language: str | None = None, **values: object) -> Html:
    """The text `key` in `language`, its placeholders filled with escaped, bounded values."""
    table = TEXTS.get(language or DEFAULT_LANGUAGE, TEXTS[DEFAULT_LANGUAGE])
    template = table.get(key, TEXTS[DEFAULT_LANGUAGE][key])
    if not values:
        return Html(template)
    return Html(template.format(**{name: _safe_value(name, value) for name, value in values.items()}))


def _safe_value(name: str, value: object) -> Html:
    if isinstance(value, Html):
        return value
    raw = value if isinstance(value, str) else str(value)
    return fmt.escape(fmt.isolate_bidi(fmt.shorten(raw, VALUE_LIMITS.get(name, VALUE_LIMIT))))


def key_of_label(label: str, keys: tuple[str, ...]) -> str | None:
    """Which menu key a pressed keyboard label stands for (labels of every language)."""
    for key in keys:
        if any(table.get(key) == label for table in TEXTS.values()):
            return key
    return None
