"""Typed errors shared across gatewayd. Each says what failed and what to do."""
from __future__ import annotations

import os
import pwd


class GatewaydError(Exception):
    """Base for errors shown to operators as one line."""


class InputError(GatewaydError, ValueError):
    """Bad input from a person or a file: names the field and why."""

    def __init__(self, field: str, reason: str, problem: str | None = None,
                 params: dict[str, object] | None = None):
        self.field = field
        self.reason = reason
        # PROBLEM (a model.RowProblem) + PARAMS let a page word the reason in its own language.
        self.problem = problem
        self.params = params or {}
        super().__init__(f"{field}: {reason}")


class NotFound(GatewaydError, LookupError):
    """A referenced thing (network, alert, user) does not exist."""

    def __init__(self, what: str, key: object):
        self.what = what
        self.key = key
        super().__init__(f"{what} {key!r} does not exist")


class CannotWrite(GatewaydError):
    """A file the operator named cannot be written by the user gatewayd runs as.

    `gatewayd` on PATH runs as the gatewayd user even when root calls it (so root never
    leaves files the daemon cannot use): root's own directories are closed to it."""

    def __init__(self, path: object, reason: str | None):
        user = pwd.getpwuid(os.geteuid()).pw_name
        super().__init__(f"{path}: cannot write it as user {user} ({reason}); choose a directory {user} "
                         "can write, e.g. /var/lib/gatewayd/backups, or /tmp and move the file afterwards")
