"""Epoch milliseconds as people read them: a UTC date and time, or the value as stored.

Every ``*_ms`` value the plugin's pages show goes through ``utc`` (the raw number stays in JSON
and CSV, and beside or under the readable time on a page). A value no calendar holds (negative,
zero, past year 9999, not a whole number) gives None, and the page shows it as stored.
"""

import datetime
from typing import Any, Optional

from markupsafe import Markup


def as_integer(value: Any) -> Optional[int]:
    """``value`` as an int when it is a whole number (an int, or text of one); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def utc(value: Any) -> Optional[str]:
    """``2026-03-20 00:00:02 UTC`` for epoch milliseconds a calendar holds, else None."""
    number = as_integer(value)
    if number is None or number <= 0:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(number / 1000, tz=datetime.timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: Any) -> Optional[str]:
    """``2026-03-20T00:00:02.000Z`` for epoch milliseconds a calendar holds, else None."""
    number = as_integer(value)
    if number is None or utc(value) is None:
        return None
    moment = datetime.datetime.fromtimestamp(number / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def html(value: Any) -> Markup:
    """A ``*_ms`` value for a page: its UTC time with the raw number beside it (and on hover),
    or the value as stored when no calendar holds it."""
    text = utc(value)
    if text is None:
        return Markup('<span class="rt-ms">{}</span>').format("" if value is None else value)
    return Markup('<time class="rt-time" datetime="{}" title="{}">{}</time> '
                  '<span class="rt-ms">{}</span>').format(iso(value), value, text, value)
