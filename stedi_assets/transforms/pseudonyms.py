"""The pseudonymous customer key, shared by every engine (plain Python, no frames)."""

import hashlib
import hmac
from collections.abc import Iterable

from stedi_assets.transforms.identity import identity


def customer_key(email: str | None, secret: str) -> str | None:
    """The pseudonymous key of one customer: HMAC-SHA256(secret, identity of the email) in
    hex, so every spelling of an email (case, surrounding blanks) gets the same key."""
    return customer_keys([email], secret)[0]


def customer_keys(emails: Iterable[str | None], secret: str) -> list[str | None]:
    """`customer_key` of each email. The HMAC is keyed once and copied for each email (keying
    it again per email costs a third of the time: a run computes about a million keys)."""
    keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def key(email: str | None) -> str | None:
        if email is None:
            return None
        mac = keyed.copy()
        mac.update(identity(email).encode())
        return mac.hexdigest()

    return [key(e) for e in emails]


def reported_keys(sample: list, consenting_key: str, secret: str) -> list[str]:
    """Violating keys as a check may report them (metadata, logs, alerts): an email becomes
    its pseudonymous customerKey; serial numbers and customerKeys are reported as they are."""
    return [str(customer_key(v, secret) if consenting_key == "email" and v is not None else v)
            for v in sample]
