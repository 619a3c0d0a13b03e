"""Test helpers shared by the end-to-end tests."""
from sandbox.stack import LocalDesk as Desk, wait_for  # noqa: F401


def crm_chat(db, id_i: int, **columns) -> int:
    """A KeepingCRM conversation row as KeepDesk stores it (its number is its id_i),
    with any other columns given (`customer_email`, `title`, `kind`, …)."""
    names = ["id", "channel", "account", "external_id", *columns]
    values = [id_i, "keepingcrm", "", str(id_i), *columns.values()]
    db.execute(f"INSERT INTO conversations ({', '.join(names)})"
               f" VALUES ({', '.join(['%s'] * len(values))}) ON DUPLICATE KEY UPDATE id = id",
               values)
    return id_i


def install_release_2(db) -> None:
    """Make `db` (empty) what KeepDesk 2 left behind: its schema as it created it, by
    re-applying its schema.sql (kept verbatim as migrations/0001.baseline.sql), without
    any record of versioned migrations — as every shop installed before them has it."""
    from yoyo.migrations import read_sql_migration
    from models.db import MIGRATIONS_PATH
    _, _, statements = read_sql_migration(str(MIGRATIONS_PATH / "0001.baseline.sql"))
    for statement in statements:
        db.execute(statement)


def crm_conversation(id_i: int = 1, email: str | None = None, product: str | None = None,
                     last_date=None, cnt_msg: int = 1, cnt_new: int = 1, kind: str = "ordinary",
                     status: str = "new"):
    """A KeepingCRM conversation as the desk sees it (for views and posts)."""
    from models.conversations import Conversation
    return Conversation(id=id_i, channel="keepingcrm", account="", external_id=str(id_i),
                        title=product, customer_name=None, customer_email=email,
                        customer_phone=None, customer_tg_id=None, last_date=last_date,
                        last_customer_at=None, cnt_msg=cnt_msg, cnt_new=cnt_new, kind=kind,
                        status=status)


def stored_message(id: int = 1, conversation_id: int = 1, direction: str = "client",
                   text: str = "", is_file: bool = False, is_img: bool = False,
                   filename: str | None = None, url: str | None = None,
                   preview: str | None = None, date_written=None, date_seen=None,
                   deleted: bool = False):
    """A stored message (its channel's id: its own number, as a CRM message's)."""
    from models.messages import StoredMessage
    return StoredMessage(id=id, conversation_id=conversation_id, external_id=str(id),
                         direction=direction, text=text, is_file=is_file, is_img=is_img,
                         filename=filename, url=url, preview=preview, date_written=date_written,
                         date_seen=date_seen, deleted=deleted)


def crm_source(conversation, web_url: str = "http://crm.example/web"):
    """How a KeepingCRM conversation's post names its source: the order page."""
    from bot.posts import Source
    from channels.keepingcrm import order_url
    return Source(link=order_url(web_url, conversation.ref))


def relayed_message_dead_letter(db, tg, log_chat: int, says: str) -> str:
    """A relayed message that could not reach Planfix: its job a dead letter, and the
    #ERROR in the log chat that says `says`; that report's text."""
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'pf_message' AND status = 'failed'"),
             timeout=20)
    return wait_for(lambda: [m for m in tg.messages(log_chat) if says in (m.get("text") or "")],
                    timeout=20)[0]["text"]
