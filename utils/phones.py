"""Phone numbers at the border: whatever 1C, an API caller or WhatsApp sends ("0671234567",
"8 900 123-45-67", "+380 67 123 45 67", "380671234567") becomes one E.164 number, checked
by Google's libphonenumber (the `phonenumbers` package), or is refused.

KeepDesk keeps a phone as WhatsApp names it: E.164 digits without "+" ("380671234567",
the Cloud API's `wa_id`); people are shown "+380671234567".
"""
from __future__ import annotations

import re

import phonenumbers

MAX_INPUT = 40
_ALLOWED = re.compile(r"^[0-9+()\-.\s]{3,40}$")


class InvalidPhone(ValueError):
    """Not a phone number that can exist."""


def normalise(raw: object, default_region: str) -> str:
    """E.164 digits without "+", or InvalidPhone. A number without a country code is read
    in `default_region` (PHONE_DEFAULT_REGION); one that is not valid there but is valid
    with a "+" in front ("380671234567" sent without its "+") is taken as that."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_INPUT or not _ALLOWED.match(raw.strip()):
        raise InvalidPhone("not a phone number")
    text = raw.strip()
    candidates = [text] if text.startswith("+") else [text, "+" + re.sub(r"\D", "", text)]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, None if candidate.startswith("+") else default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    raise InvalidPhone(f"not a valid phone number (default region {default_region})")


def display(digits: str) -> str:
    """How people see a stored phone: +380671234567."""
    return f"+{digits}" if digits and digits.isdigit() else digits
