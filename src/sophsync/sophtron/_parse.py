"""Lenient parsers for the value formats Sophtron (and the clients that imitate it) really send.

Each function takes whatever JSON produced and returns one canonical Python value or raises
``ValueError`` with a short reason. They are used as pydantic ``BeforeValidator`` s in ``models``.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_CURRENCY_SYMBOLS = {
    "$": "USD",
    "US$": "USD",
    "USD$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "CAD$": "CAD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "A$": "AUD",
    "MX$": "MXN",
}
DEFAULT_CURRENCY = "USD"

_CODE = re.compile(r"[A-Za-z]{3}")
_AMOUNT_NOISE = re.compile(r"[\s,]|US\$|CA\$|C\$|A\$|MX\$|\$|€|£|¥|₹|\b[A-Z]{3}\b")


def currency_code(value: object) -> str:
    """ISO 4217 code for a Sophtron currency field (a symbol such as ``"$"``, or a code)."""
    if value is None:
        return DEFAULT_CURRENCY
    return _currency_code(value if isinstance(value, str) else str(value))


@functools.lru_cache(maxsize=512)
def _currency_code(given: str) -> str:
    """``currency_code`` of a text; a few values recur in every reply, so it is kept."""
    text = given.strip()
    if not text:
        return DEFAULT_CURRENCY
    if text.upper() in _CURRENCY_SYMBOLS:
        return _CURRENCY_SYMBOLS[text.upper()]
    if text in _CURRENCY_SYMBOLS:
        return _CURRENCY_SYMBOLS[text]
    if _CODE.fullmatch(text):
        return text.upper()
    raise ValueError(f"unknown currency {text!r}")


def parse_currency(value: object) -> str | None:
    """A currency field as Sophtron sent it, refused (``ValueError``, so the reply is malformed)
    when it names no currency we can tell: guessing one would put amounts in the wrong money."""
    text = parse_text(value)
    currency_code(text)
    return text


def parse_money(value: object) -> Decimal | None:
    """A decimal amount from a JSON number or a string: ``"-12.34"``, ``"$1,250.35"``, ``"(5)"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("an amount cannot be true/false")
    negative = False
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("\u2212", "-")
        if not text:
            return None
        if text.startswith("(") and text.endswith(")"):
            negative, text = True, text[1:-1]
        if text.endswith("-") and not text.startswith("-"):
            negative, text = True, text[:-1]
        text = _AMOUNT_NOISE.sub("", text)
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not an amount: {value!r}") from None
    else:
        raise ValueError(f"not an amount: {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return result.copy_negate() if negative else result


_ISO = re.compile(
    r"^\s*(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d+))?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?)?\s*$",
    re.IGNORECASE,
)
_US = re.compile(
    r"^\s*(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?\s*(?P<ampm>[AP]M)?)?\s*$",
    re.IGNORECASE,
)
_MS_JSON = re.compile(r"^\s*/?Date\((?P<ms>-?\d+)(?P<tz>[+-]\d{4})?\)/?\s*$")


def _tz(text: str | None) -> dt.tzinfo | None:
    if text is None:
        return None
    if text.upper() == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_datetime(value: object) -> dt.datetime | None:
    """A timestamp from ISO 8601 (any fraction length, ``Z`` or offset or none), ``YYYY/MM/DD``,
    ``MM/DD/YYYY [h:mm[:ss] AM]`` or ASP.NET's ``/Date(ms)/``. No zone means UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a date: {type(value).__name__}")
    if not value.strip():
        return None
    if match := _MS_JSON.match(value):
        try:
            epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
            return epoch + dt.timedelta(milliseconds=int(match["ms"]))
        except (OverflowError, ValueError):
            raise ValueError(f"not a valid date: {value!r}") from None
    match = _ISO.match(value) or _US.match(value)
    if not match:
        raise ValueError(f"not a date: {value!r}")
    parts = match.groupdict()
    hour = int(parts["H"] or 0)
    if (ampm := parts.get("ampm")) is not None:
        hour = hour % 12 + (12 if ampm.upper() == "PM" else 0)
    fraction = (parts.get("f") or "")[:6].ljust(6, "0")
    try:
        return dt.datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            hour,
            int(parts["M"] or 0),
            int(parts["S"] or 0),
            int(fraction),
            tzinfo=_tz(parts.get("tz")) or dt.UTC,
        )
    except ValueError:
        raise ValueError(f"not a valid date: {value!r}") from None


def parse_date(value: object) -> dt.date | None:
    """The calendar date a value names, as written (no time-zone shift)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if (
        isinstance(value, str)
        and len(value) >= 10
        and value[4] == value[7] == "-"
        and (len(value) == 10 or value[10] in "T ")
    ):
        # The common case, ``2026-11-20`` or ``2026-11-20T...``: the date as written.
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
    stamp = parse_datetime(value)
    return stamp.date() if stamp else None


def parse_flag(value: object) -> bool | None:
    """A tri-state flag: true, false, or ``None`` (unknown / still in progress)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"true", "1", "yes", "y"}:
            return True
        if text in {"false", "0", "no", "n"}:
            return False
        return None
    raise ValueError(f"not a flag: {type(value).__name__}")


def parse_string_list(value: object) -> list[str]:
    """A list of strings from a JSON array, or from a string holding one.

    Sophtron sends several lists (``SecurityQuestion``, ``TokenMethod``, ``Phone``) as a *string*
    containing a JSON array; its help pages show single-quoted pseudo-arrays. Anything else is
    taken as one item.
    """
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value if item is not None and str(item) != ""]
    if not isinstance(value, str):
        return [str(value)]
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        parsed: Any
        try:
            parsed = json.loads(text)
        except ValueError:
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                parsed = None
        if isinstance(parsed, list | tuple):
            return parse_string_list(list(parsed))
    return [value]


def parse_text(value: object) -> str | None:
    """A string field; numbers (an account number sent as 1234) become text. NUL characters
    are dropped: no bank text means one, and PostgreSQL stores none."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return str(value)
    raise ValueError(f"not text: {type(value).__name__}")


@functools.lru_cache(maxsize=4096)
def normalise_key(key: str) -> str:
    """``AccountID``, ``AccountId``, ``accountID`` and ``account_id`` all become ``accountid``."""
    return re.sub(r"[^a-z0-9]", "", key.lower())
