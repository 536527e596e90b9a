"""R-MASK: the one masking function. Agents, monitor, logs and exports all call it.

`13812345678` → `138****5678`: the four digits before the last four are hidden, the prefix and the
last four are kept; other lengths follow the same rule.
"""

from __future__ import annotations

import re

_DIGIT = re.compile(r"\d")

# A phone-like run in free text: 7-15 digits (E.164 allows no more), optionally +country code, or
# area-code-hyphen forms (010-62345678), or spaced mobile groups (138 1234 5678). Decimal numbers
# (Asterisk Uniqueids such as 1763900000.42, epoch timestamps with fractions) and longer digit runs
# (the event spool's nanosecond segment names `01795922343146554321-77-000001.jsonl`) are not phone
# numbers and are left alone.
_PHONE_IN_TEXT = re.compile(
    r"(?<![\d.])"
    r"(?:"
    r"\+?\d{1,4}[ -]\d{3}[ -]\d{4}[ -]\d{4}"  # +86 138 1234 5678
    r"|\d{3}[ ]\d{4}[ ]\d{4}"  # 138 1234 5678
    r"|\(?0\d{2,3}\)?[ -]?\d{3,4}[ -]?\d{4}"  # (010) 62345678, 010-62345678, (021) 5555 1234
    r"|\+?\d{7,15}"  # 13812345678, +8613812345678, 4008001234
    r")"
    r"(?![\d]|\.\d)"
)


def mask_number(number: str | None) -> str:
    """Mask one phone number. Non-digits other than a leading '+' are dropped from the result."""
    if not number:
        return ""
    digits = "".join(_DIGIT.findall(number))
    plus = "+" if number.strip().startswith("+") else ""
    n = len(digits)
    if n == 0:
        return "*" * min(len(number), 8)
    if n <= 4:
        return plus + "*" * n
    hidden = min(4, n - 4)
    keep = n - 4 - hidden
    return plus + digits[:keep] + "*" * hidden + digits[n - 4 :]


def mask_text(text: str) -> str:
    """Mask every phone-number-looking run inside free text (log lines, caller names)."""
    if not text or not _DIGIT.search(text):
        return text
    return _PHONE_IN_TEXT.sub(lambda m: _mask_keep_shape(m.group(0)), text)


def _mask_keep_shape(found: str) -> str:
    digits = [c for c in found if c.isdigit()]
    n = len(digits)
    hidden = min(4, max(n - 4, 0))
    hide_from, hide_to = n - 4 - hidden, n - 4
    out, i = [], 0
    for c in found:
        if c.isdigit():
            out.append("*" if hide_from <= i < hide_to else c)
            i += 1
        else:
            out.append(c)
    return "".join(out)


_MOBILE_INT = re.compile(r"^1[3-9]\d{9}$|^86\d{11}$")


def mask_value(value: object) -> object:
    """Mask phone numbers anywhere inside a structure (str, int, list, tuple, dict values)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        s = str(value)
        return mask_number(s) if _MOBILE_INT.match(s) else value
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v) for v in value)
    return value
