"""Logging: one structured line per event to stdout (journald), nothing sensitive.

Phone numbers are redacted and configured secrets are masked by a filter on
the handler, so a careless log call cannot leak them. No per-message files:
the box runs on an SD card.
"""
from __future__ import annotations

import logging
import re
import sys

_PHONE = re.compile(r"(?<![\w+])(\+?\d{2,4})\d{4,8}(\d{2})(?!\w)")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        for secret in self.secrets:
            msg = msg.replace(secret, "***")
        msg = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", msg)
        record.msg, record.args = msg, None
        return True


def setup_logging(level: str = "INFO", secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
