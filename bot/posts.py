"""What a new customer message looks like in Telegram (SPEC §3, flow 1).

`posts_for_client_message` turns one stored customer message into the Telegram messages
to send: to the shared chat with a reply button, or — when a manager holds the
conversation — to that manager with an "open chat" button and to the shared chat
silently. Each post is a plain dict (the payload of a durable send job).

A KeepingCRM chat's post has SPEC §3's header (product, the order linked to the CRM, the
client); another channel's post names its channel and customer in its header
("🟢 WhatsApp · +380…").
"""
from __future__ import annotations

from dataclasses import dataclass

from bot import formatting as fmt
from bot.formatting import Html
from bot.callbacks import CallbackCodec
from bot.keyboards import open_chat_button, reply_button
from bot.texts import language_for, text
from models.conversations import KEEPINGCRM, Conversation
from models.messages import StoredMessage
from models.users import User


# Room kept free in every post for the notes added later ("Менеджер: @name" …).
NOTES_ROOM = 200
POST_TEXT_LIMIT = fmt.TEXT_LIMIT - NOTES_ROOM
POST_CAPTION_LIMIT = fmt.CAPTION_LIMIT - NOTES_ROOM
PRODUCT_ROOM = 200      # a product title in a post's header
EMAIL_ROOM = 100        # a client's e-mail in a post's header
LINK_LABEL_LIMIT = 1000  # a file's text up to this long is its link; a longer one is text
FILE_NAME_ROOM = 100    # a file's name as a link label


@dataclass
class Post:
    chat_id: int
    method: str                      # "sendMessage" | "sendPhoto"
    text: str                        # Html: the text, or the photo's caption
    photo: str | None = None
    reply_markup: dict | None = None
    disable_notification: bool = False
    conversation_id: int | None = None
    message_id: int | None = None
    purpose: str = "post"
    part: int = 0
    merge_html: str | None = None    # this post's message alone, to join a merged post
    # A file the channel keeps (WhatsApp media): the sender fetches and uploads it.
    media: dict | None = None


    def payload(self) -> dict:
        return {"chat_id": self.chat_id, "method": self.method, "text": self.text,
                "photo": self.photo, "reply_markup": self.reply_markup,
                "disable_notification": self.disable_notification,
                "conversation_id": self.conversation_id, "message_id": self.message_id,
                "purpose": self.purpose,
                "part": self.part, "merge_html": self.merge_html,
                **({"media": self.media} if self.media else {})}

    @property
    def dedupe_key(self) -> str:
        return f"post:{self.message_id}:{self.chat_id}:{self.part}"


@dataclass(frozen=True)
class Source:
    """Where the conversation lives, as its post shows it: the channel's icon and name,
    and the link that opens the conversation there (the CRM's order page)."""
    icon: str = "📧"
    label: str = "KeepingCRM"
    link: str | None = None


def header(chat: Conversation, source: Source, language: str, *,
           pinned_to: User | None = None) -> Html:
    if chat.channel == KEEPINGCRM:
        lines = [text("post_title", language)]
        # Product and e-mail are capped so that the header always leaves room in a caption.
        if chat.title:
            lines.append(fmt.escape(fmt.shorten(chat.title, PRODUCT_ROOM)))
        number = fmt.link(source.link, chat.ref) if source.link else fmt.escape(chat.ref)
        lines.append(text("post_invoice", language, link=number,
                          email=fmt.shorten(chat.customer or "—", EMAIL_ROOM)))
    else:
        lines = [text("post_title_channel", language, icon=source.icon, channel=source.label,
                      customer=fmt.shorten(chat.customer or "—", EMAIL_ROOM))]
        if chat.customer_name and chat.customer_name != chat.customer:
            lines.append(fmt.escape(fmt.shorten(chat.customer_name, PRODUCT_ROOM)))
    if pinned_to is not None:
        lines.append(text("post_pinned_manager", language, name=pinned_to.display_name))
    lines.append(text("post_message", language))
    return fmt.join("\n", lines)


def render(chat: Conversation, message: StoredMessage, *, chat_id: int, source: Source,
           language: str, keyboard: dict | None, pinned_to: User | None = None,
           silent: bool = False, purpose: str = "post") -> list[Post]:
    """One client message → the Telegram messages for one recipient, in order.

    Nothing the customer wrote is left out: a text too long for one message is split
    across several, and a file always shows, as a link when its URL is known.
    """
    head = header(chat, source, language, pinned_to=pinned_to)
    body = fmt.crm_text(message.text)
    common = dict(chat_id=chat_id, disable_notification=silent, conversation_id=chat.id,
                  message_id=message.id, purpose=purpose)
    continued = text("post_continued", language, id_i=chat.ref)
    label_html = text("post_message", language)
    if message.is_file and message.url and fmt.utf16_len(body.strip()) <= LINK_LABEL_LIMIT:
        # SPEC §3.1: a file is shown as its text (or, without one, its name) linked to it.
        link = fmt.link(message.url, body.strip() or file_name(message, language))
        posts = [Post(method="sendMessage", text=head + link, merge_html=label_html + link, **common)]
    elif message.media_ref and (message.is_img or message.is_file):
        # The channel keeps the file (WhatsApp's media needs the number's token): the sender
        # asks the channel for its bytes and uploads them (sendPhoto / sendDocument).
        media = {"message_id": message.id, "name": file_name(message, language)}
        method = "sendPhoto" if message.is_img else "sendDocument"
        caption_room = POST_CAPTION_LIMIT - fmt.visible_len(head)
        if fmt.utf16_len(body) <= caption_room:
            posts = [Post(method=method, text=head + fmt.escape(body), media=media, **common)]
        else:
            posts = [Post(method=method, text=head, media=media, **common)]
            posts += [Post(method="sendMessage", text=part, **common)
                      for part in fmt.compose(continued, body, limit=POST_TEXT_LIMIT,
                                              continuation_html=continued)]
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
        attachment = attachment_line(message, language)
        if attachment is not None:  # a long text with a file: the file on a line of its own
            if not body.strip():
                parts[-1] += attachment
            elif fmt.visible_len(parts[-1]) + 1 + fmt.visible_len(attachment) <= POST_TEXT_LIMIT:
                parts[-1] = fmt.join("\n", [parts[-1], attachment])
            else:
                parts.append(continued + attachment)
        posts = [Post(method="sendMessage", text=part, **common) for part in parts]
        if len(parts) == 1:
            posts[0].merge_html = label_html + Html(parts[0][len(head):])
    for number, post in enumerate(posts):
        post.part = number
    posts[-1].reply_markup = keyboard  # the button sits under the end of the message
    return posts


def file_name(message: StoredMessage, language: str) -> str:
    """A file's name as a link label, short enough to read; "файл" when it has none."""
    if message.filename:
        return fmt.shorten_filename(message.filename, FILE_NAME_ROOM)
    return text("post_file", language)


def attachment_line(message: StoredMessage, language: str) -> Html | None:
    """The file (or an image that cannot be shown) of a message, as a line of its own."""
    if not (message.is_file or message.is_img):
        return None
    url = message.url or message.preview
    if url:
        return fmt.link(url, file_name(message, language))
    # The CRM's URL could not be kept (see crm.client): the file is named, not linked.
    label = text("image" if message.is_img else "file", language)
    return fmt.join(" ", [label, fmt.shorten_filename(message.filename, FILE_NAME_ROOM)]
                    if message.filename else [label])


def posts_for_client_message(chat: Conversation, message: StoredMessage, *, shared_chat_id: int,
                             source: Source, codec: CallbackCodec, pinned_to: User | None,
                             forced_language: str | None = None) -> list[Post]:
    shared_language = language_for(None, forced_language)
    if pinned_to is None:
        return render(chat, message, chat_id=shared_chat_id, source=source,
                      language=shared_language,
                      keyboard=reply_button(codec, shared_language, message.id, task=chat.is_task))
    if not pinned_to.reachable:
        # The manager blocked the bot: the shared chat must hear it, not quietly.
        return render(chat, message, chat_id=shared_chat_id, source=source,
                      language=shared_language, pinned_to=pinned_to, keyboard=None)
    manager_language = language_for(pinned_to.language, forced_language)
    to_manager = render(chat, message, chat_id=pinned_to.tg_id, source=source,
                        language=manager_language, purpose="notify",
                        keyboard=open_chat_button(codec, manager_language, chat.id))
    to_shared = render(chat, message, chat_id=shared_chat_id, source=source,
                       language=shared_language, pinned_to=pinned_to, silent=True, keyboard=None)
    return to_manager + to_shared
