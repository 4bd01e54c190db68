"""One exception type with stable error codes (the codes are part of the CLI contract)."""

from __future__ import annotations


class RedlineError(Exception):
    """An error a user can act on: ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
