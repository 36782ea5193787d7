"""The pseudonymous customer key, shared by every engine (plain Python, no frames)."""

import hashlib
import hmac

from stedi_assets.transforms.identity import identity


def customer_key(email: str | None, secret: str) -> str | None:
    """The pseudonymous key of one customer: HMAC-SHA256(secret, identity of the email) in
    hex, so every spelling of an email (case, surrounding blanks) gets the same key."""
    if email is None:
        return None
    return hmac.new(secret.encode(), identity(email).encode(), hashlib.sha256).hexdigest()


def reported_keys(sample: list, consenting_key: str, secret: str) -> list[str]:
    """Violating keys as a check may report them (metadata, logs, alerts): an email becomes
    its pseudonymous customerKey; serial numbers and customerKeys are reported as they are."""
    return [str(customer_key(v, secret) if consenting_key == "email" and v is not None else v)
            for v in sample]
