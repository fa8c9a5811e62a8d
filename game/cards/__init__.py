"""Character cards (V1/V2/V3 in PNG, JSON and CHARX), lorebooks, macros and SillyTavern chats.

Everything here reads untrusted files: limits are checked before work is done, and every
rejection is a `CardError` with a message the player can read.
"""

from __future__ import annotations


class CardError(ValueError):
    """An uploaded file cannot be used; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
