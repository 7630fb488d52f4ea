"""Typed errors shared across gatewayd. Each says what failed and what to do."""
from __future__ import annotations


class GatewaydError(Exception):
    """Base for errors shown to operators as one line."""


class InputError(GatewaydError, ValueError):
    """Bad input from a person or a file: names the field and why."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class NotFound(GatewaydError, LookupError):
    """A referenced thing (network, alert, user) does not exist."""

    def __init__(self, what: str, key: object):
        self.what = what
        self.key = key
        super().__init__(f"{what} {key!r} does not exist")
