"""Who a customer is, shared by every engine (plain Python, no frames).

- One customer, one identity: the email trimmed of whitespace and lower-cased
  (`Foo@x.com`, `foo@x.com` and `" foo@x.com "` are the same person). The engines match
  customer `email` and accelerometer `user` on it with their own string functions (trim the
  characters of IDENTITY_WHITESPACE, then lower-case); the pseudonymous customerKey is the
  HMAC of it (`pseudonyms.customer_key`). Tables keep the values as landed.
- A quarantined customer line still withdraws consent: `quarantined_identities` reads the
  emails (and lastUpdateDate) of a rejected line from its raw text, tolerating invalid JSON,
  repeated keys, escapes and any spelling of the key, so the engines can count the line as a
  record without research consent.
"""

from __future__ import annotations

import json
import math
import re

#: What `identity` trims from both ends of an email (the engines trim the same characters):
#: Unicode's White_Space characters, plus the zero-width space and the byte-order mark.
IDENTITY_WHITESPACE = ("\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200C)))
                       + "\u2028\u2029\u202f\u205f\u3000\ufeff")

_INT64_LIMIT = 2**63
# "key": "string value" (the closing quote may be missing: a truncated line) or "key": bare
_PAIR = re.compile(
    r'"((?:[^"\\]|\\.)*)"\s*:\s*(?:"((?:[^"\\]|\\.)*)"?|([^\s,:{}\[\]"]+))', re.DOTALL)


def identity(email: str | None) -> str | None:
    """The identity of an email: trimmed of IDENTITY_WHITESPACE and lower-cased."""
    if email is None:
        return None
    return email.strip(IDENTITY_WHITESPACE).lower()


def _unescape(text: str) -> str:
    try:
        return json.loads(f'"{text}"')
    except (json.JSONDecodeError, ValueError):
        return text  # an invalid escape: the text as written


def _epoch(text: str) -> int | None:
    """An epoch value as the landing parser reads it: integer text, or a whole float."""
    text = text.strip()
    if re.fullmatch(r"[+-]?[0-9]+", text):
        value = int(text)
        return value if -_INT64_LIMIT <= value < _INT64_LIMIT else None
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isfinite(number) and number == math.floor(number) and abs(number) < _INT64_LIMIT:
        return int(number)
    return None


def quarantined_identities(line: str | None) -> list[tuple[str, int | None]]:
    """(email, lastUpdateDate) for every readable email of a rejected customer line, as
    written (the engines normalise it). lastUpdateDate is None unless every lastUpdateDate
    of the line reads as the same epoch value: an unreadable or ambiguous date ranks the line
    as the newest record of its emails. Keys match in any case and with blanks around them;
    a JSON string value is unescaped; a bare value (a number) is taken as its text."""
    if not line:
        return []
    emails: list[str] = []
    dates: set[int | None] = set()
    for match in _PAIR.finditer(line):
        key = _unescape(match.group(1)).strip().lower()
        quoted, bare = match.group(2), match.group(3)
        value = _unescape(quoted) if quoted is not None else bare
        if key == "email":
            if quoted is None and bare in ("null", "true", "false"):
                continue
            if identity(value) and value not in emails:
                emails.append(value)
        elif key == "lastupdatedate":
            dates.add(None if bare == "null" else _epoch(value or ""))
    date = next(iter(dates)) if len(dates) == 1 else None  # None: unreadable or ambiguous
    return [(email, date) for email in emails]
