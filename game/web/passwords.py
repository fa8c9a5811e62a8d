"""Password checks: the players' login password and the operator's password."""

from __future__ import annotations

import hashlib
import hmac

from game.settings import Settings


def password_matches(given: str, password: str) -> bool:
    """Constant-time comparison (of digests, so length and non-ASCII text leak nothing)."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(password.encode()).digest()
    )


def may_change_backend(settings: Settings, given: str | None) -> bool:
    """Whether a request may change the global model settings.

    On loopback without a login password everyone who can reach the game is at this machine:
    the operator. Otherwise only someone who knows CHATGAME_OPERATOR_PASSWORD (the players'
    login password is shared with every player, so it does not count).
    """
    if settings.operator_on_loopback:
        return True
    password = settings.operator_password
    return bool(password) and given is not None and password_matches(given, password)
