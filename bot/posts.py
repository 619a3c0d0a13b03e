"""What a new client message looks like in Telegram (SPEC §3, flow 1).

`posts_for_client_message` turns one stored client message into the Telegram messages
to send: to the shared chat with a reply button, or — when a manager holds the chat — to
that manager with an "open chat" button and to the shared chat silently. Each post is a
plain dict (the payload of a durable send job).
"""
from __future__ import annotations

from dataclasses import dataclass

from bot import formatting as fmt
from bot.callbacks import CallbackCodec
from bot.keyboards import open_chat_button, reply_button
from bot.texts import language_for, text
from models.chats import Chat
from models.messages import StoredMessage
from models.users import User


# Room kept free in every post for the notes added later ("Менеджер: @name" …).
NOTES_ROOM = 200
POST_TEXT_LIMIT = fmt.TEXT_LIMIT - NOTES_ROOM
POST_CAPTION_LIMIT = fmt.CAPTION_LIMIT - NOTES_ROOM


@dataclass
class Post:
    chat_id: int
    method: str                      # "sendMessage" | "sendPhoto"
    text: str                        # HTML: the text, or the photo's caption
    photo: str | None = None
    reply_markup: dict | None = None
    disable_notification: bool = False
    id_i: int | None = None
    crm_message_id: int | None = None
    purpose: str = "post"
    part: int = 0
    merge_html: str | None = None    # this post's message alone, to join a merged post


    def payload(self) -> dict:
        return {"chat_id": self.chat_id, "method": self.method, "text": self.text,
                "photo": self.photo, "reply_markup": self.reply_markup,
                "disable_notification": self.disable_notification, "id_i": self.id_i,
                "crm_message_id": self.crm_message_id, "purpose": self.purpose,
                "part": self.part, "merge_html": self.merge_html}

    @property
    def dedupe_key(self) -> str:
        return f"post:{self.crm_message_id}:{self.chat_id}:{self.part}"


def order_url(web_url: str, id_i: int) -> str:
    return f"{web_url.rstrip('/')}/purchases_inv_detail?id_i={id_i}&view=debate"


def header(chat: Chat, web_url: str, language: str, *, pinned_to: User | None = None) -> str:
    lines = [text("post_title", language)]
    # Product and e-mail are capped so that the header always leaves room in a caption.
    if chat.product:
        lines.append(fmt.escape(chat.product[:200]))
    lines.append(text("post_invoice", language,
                      link=fmt.link(order_url(web_url, chat.id_i), str(chat.id_i)),
                      email=fmt.escape((chat.email or "—")[:100])))
    if pinned_to is not None:
        lines.append(text("post_pinned_manager", language, name=fmt.escape(pinned_to.display_name)))
    return "\n".join(lines) + "\n" + text("post_message", language)


def render(chat: Chat, message: StoredMessage, *, chat_id: int, web_url: str, language: str,
           keyboard: dict | None, pinned_to: User | None = None,
           silent: bool = False, purpose: str = "post") -> list[Post]:
    """One client message → the Telegram messages for one recipient, in order."""
    head = header(chat, web_url, language, pinned_to=pinned_to)
    body = fmt.crm_text(message.text)
    common = dict(chat_id=chat_id, disable_notification=silent, id_i=chat.id_i,
                  crm_message_id=message.id, purpose=purpose)
    continued = text("post_continued", language, id_i=chat.id_i)
    label_html = text("post_message", language)
    if message.is_file and message.url:
        label = body.strip() or message.filename or text("post_file", language)
        if fmt.utf16_len(label) > 1000:  # an absurdly long file name or text
            label = message.filename or text("post_file", language)
        link = fmt.link(message.url, label[:1000])
        posts = [Post(method="sendMessage", text=head + link, merge_html=label_html + link, **common)]
    elif message.is_img and (message.url or message.preview):
        photo = message.url or message.preview
        caption_room = POST_CAPTION_LIMIT - fmt.visible_len(head)
        if fmt.utf16_len(body) <= caption_room:
            posts = [Post(method="sendPhoto", text=head + fmt.escape(body), photo=photo, **common)]
        else:  # the caption cannot hold the text: the photo first, then the whole text
            posts = [Post(method="sendPhoto", text=head, photo=photo, **common)]
            posts += [Post(method="sendMessage", text=part, **common)
                      for part in fmt.compose(continued, body, limit=POST_TEXT_LIMIT,
                                              continuation_html=continued)]
    else:
        parts = fmt.compose(head, body, limit=POST_TEXT_LIMIT, continuation_html=continued)
        posts = [Post(method="sendMessage", text=part, **common) for part in parts]
        if len(parts) == 1:
            posts[0].merge_html = label_html + fmt.escape(body)
    for number, post in enumerate(posts):
        post.part = number
    posts[-1].reply_markup = keyboard  # the button sits under the end of the message
    return posts


def posts_for_client_message(chat: Chat, message: StoredMessage, *, shared_chat_id: int,
                             web_url: str, codec: CallbackCodec, pinned_to: User | None,
                             forced_language: str | None = None) -> list[Post]:
    shared_language = language_for(None, forced_language)
    if pinned_to is None:
        return render(chat, message, chat_id=shared_chat_id, web_url=web_url,
                      language=shared_language,
                      keyboard=reply_button(codec, shared_language, message.id, task=chat.is_task))
    if not pinned_to.reachable:
        # The manager blocked the bot: the shared chat must hear it, not quietly.
        return render(chat, message, chat_id=shared_chat_id, web_url=web_url,
                      language=shared_language, pinned_to=pinned_to, keyboard=None)
    manager_language = language_for(pinned_to.language, forced_language)
    to_manager = render(chat, message, chat_id=pinned_to.tg_id, web_url=web_url,
                        language=manager_language, purpose="notify",
                        keyboard=open_chat_button(codec, manager_language, chat.id_i))
    to_shared = render(chat, message, chat_id=shared_chat_id, web_url=web_url,
                       language=shared_language, pinned_to=pinned_to, silent=True, keyboard=None)
    return to_manager + to_shared
