"""The pseudonymous customer key, shared by every engine (plain Python, no frames)."""

import hashlib
import hmac


def customer_key(email: str | None, secret: str) -> str | None:
    """The pseudonymous key of one email: HMAC-SHA256(secret, email) in hex."""
    if email is None:
        return None
    return hmac.new(secret.encode(), email.encode(), hashlib.sha256).hexdigest()
