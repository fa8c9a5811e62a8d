"""Keep secrets out of pages and logs: credentials in URLs, the API key, the passwords."""

from __future__ import annotations

import logging
import re

# scheme://user:password@host -> scheme://***@host, anywhere in a text
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")


def mask_url(text: str) -> str:
    """The text with any `user:password@` in a URL replaced by `***@`."""
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter that masks URL credentials and the given secret values in every line,
    tracebacks included (an exception's message can carry the URL it failed on)."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets if len(s) >= 4]  # a short value would mask noise

    def format(self, record: logging.LogRecord) -> str:
        text = mask_url(super().format(record))
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text
