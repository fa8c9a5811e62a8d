"""The one error the play layer raises for a player: what went wrong, said for them."""

from __future__ import annotations


class PlayError(ValueError):
    """A request the game refuses, with the HTTP status to answer with and, when trying
    again later can succeed, `retry_after` (seconds). The web layer renders it in one place
    (`game/web/errors.py`): a page, or a message in the page for htmx."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
