"""The WhatsApp providers' sandboxes in the same words, so one end-to-end suite runs over
the three (issue 12): what the customer does, and what reached the customer's phone.

`sent(phone)` is what the customer got, whatever the provider's wire format:
    {"type": "text" | "image" | "document" | "template", "text", "caption", "filename",
     "data" (a file's bytes), "template", "params", "status"}
"""
from __future__ import annotations

import json
import time

import requests

from config import Settings

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")

DEVINO_SECRET = "devino-callback-secret-0123"
GREENAPI_WEBHOOK_TOKEN = "greenapi-webhook-token-0123"


class Driver:
    name: str
    window = True          # WhatsApp's 24-hour rule binds this provider
    read_receipts = True   # the desk can mark a customer's messages read
    desk = None

    def __init__(self, server) -> None:
        self.server = server

    def __getattr__(self, name):
        # customer_writes, customer_sends_image / _document, customer_reads,
        # not_on_whatsapp, add_template …: the sandbox's own test control.
        return getattr(self.server, name)

    @property
    def account(self) -> str:
        raise NotImplementedError

    def settings(self, base: Settings, **changes) -> Settings:
        raise NotImplementedError

    def sent(self, phone: str) -> list[dict]:
        raise NotImplementedError

    def webhook_url(self) -> str:
        raise NotImplementedError

    def same_message_thrice(self, phone: str, text: str, message_id: str) -> list[int]:
        """The provider delivers one customer message three times: the HTTP answers."""
        raise NotImplementedError

    def forged(self) -> list[int]:
        """Bodies from someone who is not the provider: the HTTP answers."""
        raise NotImplementedError


class CloudDriver(Driver):
    name = "cloud"

    @property
    def account(self) -> str:
        return self.server.phone_number_id

    def settings(self, base: Settings, **changes) -> Settings:
        from conftest import whatsapp_settings
        return whatsapp_settings(base, self.server, **changes)

    def sent(self, phone: str) -> list[dict]:
        shown = []
        for m in self.server.sent(phone):
            content, kind = m["content"], m["type"]
            item = {"type": kind, "status": m["status"]}
            if kind == "text":
                item["text"] = content["body"]
            elif kind in ("image", "document"):
                item.update(caption=content.get("caption") or "", filename=content.get("filename"),
                            data=self.server.media_bytes(content["id"]) if "id" in content else None)
            elif kind == "template":
                item.update(template=content["name"], params=[
                    p.get("text") for c in content.get("components") or [] for p in c.get("parameters") or []])
            shown.append(item)
        return shown

    def read_marks(self) -> list[str]:
        return self.server.read_marks()

    def same_message_thrice(self, phone: str, text: str, message_id: str) -> list[int]:
        body = {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"phone_number_id": self.server.phone_number_id},
            "contacts": [{"profile": {"name": "Іра"}, "wa_id": phone}],
            "messages": [{"from": phone, "id": message_id, "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}]}}]}]}
        return [self.server.post_webhook(body) for _ in range(3)]

    def forged(self) -> list[int]:
        import hashlib
        import hmac
        body = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
        forged = "sha256=" + hmac.new(b"not-the-app-secret", body, hashlib.sha256).hexdigest()
        answers = [self.server.post_webhook(body, signature=s) for s in (forged, "", "sha256=zz", "md5=abc")]
        url = f"{self.desk.listener_url}/whatsapp/cloud"
        answers.append(requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "wrong",
                                                 "hub.challenge": "123"}, timeout=5).status_code)
        return answers


class GreenApiDriver(Driver):
    name = "greenapi"
    window = False         # a linked personal account: no 24-hour rule, no approved templates

    @property
    def account(self) -> str:
        return self.server.instance

    def settings(self, base: Settings, **changes) -> Settings:
        return gateway_settings(base, "greenapi", self.server, **changes)

    def add_template(self, name: str, params: int, **_: object) -> None:
        """A gateway has no approved templates: the shop's texts stand for them."""

    def sent(self, phone: str) -> list[dict]:
        shown = []
        for m in self.server.sent(phone):
            content, kind = m["content"], m["type"]
            item = {"type": kind, "status": m["status"]}
            if kind == "text":
                item["text"] = content["message"]
            elif kind == "file":
                name = content.get("fileName") or ""
                stored = self.server.files.get(content["file"]) or {}
                image = (stored.get("mime") or "").startswith("image/") or name.lower().endswith(IMAGE_EXTENSIONS)
                item.update(type="image" if image else "document", caption=content.get("caption") or "",
                            filename=name, data=stored.get("data"))
            shown.append(item)
        return shown

    def read_marks(self) -> list[str]:
        return self.server.read_marks()

    def _body(self, phone: str, text: str, message_id: str) -> dict:
        return {"typeWebhook": "incomingMessageReceived",
                "instanceData": {"idInstance": int(self.server.instance), "wid": "380440000001@c.us"},
                "timestamp": int(time.time()), "idMessage": message_id,
                "senderData": {"chatId": f"{phone}@c.us", "sender": f"{phone}@c.us", "senderName": "Іра"},
                "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}}

    def same_message_thrice(self, phone: str, text: str, message_id: str) -> list[int]:
        return [self.server.post_webhook(self._body(phone, text, message_id)) for _ in range(3)]

    def forged(self) -> list[int]:
        body = self._body("380670000000", "forged", "FORGED1")
        answers = [self.server.post_webhook(body, token=t) for t in ("wrong-token", "")]
        other = dict(body, instanceData={"idInstance": 999999999})
        answers.append(self.server.post_webhook(other))
        return answers


class DevinoDriver(Driver):
    name = "devino"
    read_receipts = False  # Devino's API has no read receipts

    @property
    def account(self) -> str:
        return self.server.sender

    def settings(self, base: Settings, **changes) -> Settings:
        return gateway_settings(base, "devino", self.server, **changes)

    def sent(self, phone: str) -> list[dict]:
        shown = []
        for m in self.server.sent(phone):
            content, kind = m["content"], m["type"]
            item = {"type": kind, "status": m["status"].lower()}
            if kind == "text":
                item["text"] = content["text"]
            elif kind == "file":
                image = (content.get("contentType") or "").startswith("image/")
                stored = self.server.files.get(content["file"]) or {}
                item.update(type="image" if image else "document", caption=content.get("text") or "",
                            filename=content.get("contentName"), data=stored.get("data"))
            elif kind == "template":
                params = content.get("templateParams") or {}
                item.update(template=content["templateId"], params=[params[k] for k in sorted(params, key=int)])
            shown.append(item)
        return shown

    def read_marks(self) -> list[str]:
        return []

    def _url(self, secret: str = DEVINO_SECRET) -> str:
        return f"{self.desk.listener_url}/whatsapp/devino/{secret}/incoming"

    def same_message_thrice(self, phone: str, text: str, message_id: str) -> list[int]:
        body = {"incomingMessageId": message_id, "to": self.server.sender, "from": phone,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "text": text, "profileName": "Іра"}
        return [requests.post(self._url(), json=body, timeout=5).status_code for _ in range(3)]

    def forged(self) -> list[int]:
        body = {"incomingMessageId": "forged", "to": self.server.sender, "from": "380670000000", "text": "x"}
        return [requests.post(self._url(secret), json=body, timeout=5).status_code
                for secret in ("wrong-secret-0000", DEVINO_SECRET[:-1], "")] + [
            requests.post(f"{self.desk.listener_url}/whatsapp/devino/{DEVINO_SECRET}/other", json=body,
                          timeout=5).status_code]


def gateway_settings(base: Settings, provider: str, server, **changes) -> Settings:
    """Settings of one gateway account pointed at its sandbox."""
    if provider == "greenapi":
        changes.setdefault("whatsapp_greenapi_webhook_token", GREENAPI_WEBHOOK_TOKEN)
        return base.replace(whatsapp_provider="greenapi", whatsapp_greenapi_url=server.url,
                            whatsapp_greenapi_media_url=server.url, whatsapp_greenapi_id=server.instance,
                            whatsapp_greenapi_token=server.token, **changes)
    return base.replace(whatsapp_provider="devino", whatsapp_devino_url=server.url,
                        whatsapp_devino_key=server.key, whatsapp_devino_from=server.sender,
                        whatsapp_devino_callback_secret=DEVINO_SECRET, **changes)


def driver_for(provider: str, server) -> Driver:
    return {"cloud": CloudDriver, "greenapi": GreenApiDriver, "devino": DevinoDriver}[provider](server)
