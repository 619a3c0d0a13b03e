"""What the Graph API's refusals mean for the shop (CHANNELS.md §3). Each becomes one of
the connector contract's errors, carrying Meta's code and a text key that tells the
manager (or 1C) what happened in plain words; `shop_must_act` ones are dead letters
with #ERROR.

| code | meaning | becomes |
|---|---|---|
| 131047 | more than 24 h since the customer wrote | WindowClosed: the manager is offered templates |
| 131026 | the customer cannot receive it (no WhatsApp, old app, blocked) | Undeliverable |
| 130429, 131056, HTTP 429 | too fast for the number / for this customer | Throttled: retried later |
| 132000, 132001 (132005, 132007, 132012, 132015, 132016) | template missing or wrong parameters | TemplateProblem: #ERROR |
| 190 (and HTTP 401) | the access token expired or was revoked | BadToken: #ERROR |
| 5xx, network | Meta away | Unavailable: retried |
| anything else 4xx | refused as invalid | Refused, with Meta's message |
"""
from __future__ import annotations

from channels.base import ChannelError, Rejected, Unavailable

WINDOW_CLOSED = 131047
UNDELIVERABLE = 131026
THROTTLED = (130429, 131056, 4, 80007)
TEMPLATE = (132000, 132001, 132005, 132007, 132012, 132015, 132016)
BAD_TOKEN = 190


class Unsupported(Rejected):
    """The account's provider cannot do this at all ("not supported by this provider")."""
    notice = "wa_err_unsupported"

    def __init__(self, feature: str, provider: str) -> None:
        super().__init__(f"{feature} is not supported by the {provider} provider")
        self.feature = feature
        self.provider = provider


class NotAuthorized(Unavailable):
    """A gateway's instance is not linked to a WhatsApp account (logged out, blocked,
    starting): nothing can go out until it is; sends wait."""

    def __init__(self, reason: str, state: str, retry_after: float = 15.0) -> None:
        super().__init__(reason)
        self.state = state
        self.retry_after = retry_after


class OutcomeUnknown(Unavailable):
    """The request may have been taken (its answer was lost or could not be read): sending
    it again blindly could send it twice."""


class WindowClosed(Rejected):
    notice = "wa_err_window"
    code = WINDOW_CLOSED


class Undeliverable(Rejected):
    notice = "wa_err_undeliverable"
    code = UNDELIVERABLE


class Refused(Rejected):
    notice = "wa_err_refused"

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code


class Throttled(Unavailable):
    def __init__(self, reason: str, code: int | None, retry_after: float) -> None:
        super().__init__(reason)
        self.code = code
        self.retry_after = retry_after


class ShopMustAct(ChannelError):
    """Nothing goes out until the shop fixes its side: a dead letter and #ERROR."""
    shop_must_act = True
    notice = "wa_err_refused"

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TemplateProblem(ShopMustAct):
    notice = "wa_err_template"


class BadToken(ShopMustAct):
    notice = "wa_err_token"


def from_graph(status: int, body: object) -> ChannelError:
    """The error a Graph API answer (not 2xx) stands for."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
    message = str(details or error.get("message") or f"HTTP {status}")[:500]
    reason = f"{code}: {message}" if code is not None else message
    if status >= 500 and code not in TEMPLATE and code != BAD_TOKEN:
        return Unavailable(f"WhatsApp Cloud API: {reason}")
    if code == WINDOW_CLOSED:
        return WindowClosed(reason)
    if code == UNDELIVERABLE:
        return Undeliverable(reason)
    if code in THROTTLED or status == 429:
        # 131056: this customer, for Meta's pair window; 130429: the number, a short pause.
        return Throttled(f"WhatsApp Cloud API throttled: {reason}", code,
                         6.0 if code == 131056 else 0.25)
    if code in TEMPLATE:
        return TemplateProblem(f"WhatsApp template problem ({reason})", code)
    if code == BAD_TOKEN or status == 401:
        return BadToken(f"WhatsApp access token refused ({reason}): renew the token in the"
                        " settings, then /retry_ the failed jobs", code)
    return Refused(reason, code)
