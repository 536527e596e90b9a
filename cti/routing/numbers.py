"""Caller numbers as Asterisk hands them over: usable, withheld, or garbage. Standard library only, so
the process-per-call degraded script (cti/degraded) can import it without the rest of cti."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cti.masking import mask_number

UNKNOWN_DISPLAY = "unknown"  # what the agent's phone shows for a withheld or unusable number

# What Asterisk and carriers put in CALLERID(num) when there is no number.
_WITHHELD = frozenset({"", "unknown", "anonymous", "restricted", "private", "unavailable", "withheld"})
# A number we can look up or call back: digits, a leading + allowed, once spaces/dashes/brackets are gone.
DIALABLE = re.compile(r"^\+?[0-9]{3,20}$")
# An agent id as it may appear in a channel variable, an AMI header or a URL (also PJSIP endpoint names).
AGENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def compact_number(raw: str) -> str:
    """A number without the spaces, dashes and brackets people and carriers put in it."""
    return re.sub(r"[\s\-()]", "", raw.strip())


class NumberKind(StrEnum):
    VALID = "valid"
    WITHHELD = "withheld"
    INVALID = "invalid"  # letters, SQL, too long: not a number we can look up or call back


@dataclass(frozen=True, slots=True)
class CallerNumber:
    kind: NumberKind
    number: str | None  # normalised digits (leading + kept) when VALID

    @property
    def masked(self) -> str:
        return mask_number(self.number) if self.number else UNKNOWN_DISPLAY


def classify_number(raw: str | None) -> CallerNumber:
    """CALLERID(num) as Asterisk gives it -> a number we may use, or why not."""
    s = (raw or "").strip()
    if s.strip("<>").lower() in _WITHHELD:
        return CallerNumber(NumberKind.WITHHELD, None)
    compact = compact_number(s)
    if DIALABLE.match(compact):
        return CallerNumber(NumberKind.VALID, compact)
    return CallerNumber(NumberKind.INVALID, None)


class NotAPhoneNumber(ValueError):
    """A contact-list cell that is not a number we may dial; the message says why (masked)."""


def normalise_dialable(raw: str, region: str = "CN") -> str:
    """A number as people write it in a contact list (13812345678, 010-62345678, +86 138 1234 5678,
    0086...) -> E.164 (+8613812345678), checked against the numbering plan by `phonenumbers`.
    Imported here, not at the top: the degraded script imports this module with the stdlib only."""
    import phonenumbers

    s = raw.strip()
    if classify_number(s).kind is not NumberKind.VALID and not re.fullmatch(r"[\s\-()+0-9]{3,30}", s):
        raise NotAPhoneNumber(f"{mask_number(s) or 'empty'} is not a phone number")
    if s.startswith("00"):
        s = "+" + s[2:]
    try:
        parsed = phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException:
        raise NotAPhoneNumber(f"{mask_number(s)} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise NotAPhoneNumber(f"{mask_number(s)} is not a valid number in the numbering plan")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def trunk_form(e164: str) -> str:
    """What a Chinese carrier trunk is sent and what inbound CALLERID(num) usually holds: national
    digits for China (13812345678, 01062345678), 00 + the international number otherwise."""
    import phonenumbers

    if e164.startswith("+86"):
        fmt = phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(ch for ch in fmt if ch.isdigit())
    return "00" + e164.lstrip("+")
