"""Logging: one structured line per event to stdout (journald), nothing sensitive.

Redaction happens in the handler's formatter, on the finished line, so it
covers the message, its arguments, exception tracebacks and third-party
libraries alike; a careless log call cannot leak:

* phone numbers, compact (+32470123456, 0470123456, 32470123456) or written
  with spaces, dots or slashes (0470 12 34 56, +32 470/12.34.56): all but the
  last two digits of the subscriber part are masked, as `phone.redact` does;
* configured secrets (AMI secret, SIM PINs, web secret key, SMTP password,
  database password): replaced by ***;
* anything written as `secret=`, `password:`, `pin=` ..., `Secret: ` (an AMI
  login) or `AT+CPIN="..."`: the value is masked even when not configured;
* SMS PDUs (long hex strings, which hold the number and the text).

One event is one line: newlines (tracebacks) are escaped as `\\n`, so journald
keeps an event together. No per-message files: the box runs on an SD card.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Iterable, TextIO

if TYPE_CHECKING:
    from .config import Config

MIN_SECRET = 4   # shorter "secrets" would mask ordinary words and numbers

# 8-15 digits in a row, optionally after "+": keep the first digits, mask 4, keep the last 2.
_COMPACT = re.compile(r"(?<![\w+*])\+?\d{8,15}(?![\w*])")
# Numbers written in groups: national (0...) or international (+.. / 00..), separators space . /
_GROUPED = re.compile(r"(?<![\w+*])(?:\+\d{2}|00\d{2}|0)(?:[ ./]?\d){7,11}(?![\w*])")
_KEYVALUE = re.compile(r"(?i)(\+CPIN=|\b(?:secret|password|passwd|pin|puk|token|secret_key|smtp_password)"
                       r"\b\s*[=:]\s*)(\"?)([^\s\",;]+)")
_PDU = re.compile(r"\b[0-9A-Fa-f]{24,}\b")


def _mask_number(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = re.sub(r"\D", "", text)
    if len(digits) < 8:
        return text
    plus = "+" if text.startswith("+") else ""
    return plus + digits[:-6] + "****" + digits[-2:]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """TEXT with secrets, phone numbers, key=value credentials and PDUs masked."""
    for secret in sorted((s for s in secrets if s and len(s) >= MIN_SECRET), key=len, reverse=True):
        if secret.isdigit():   # a PIN: only as a whole number, not inside a longer one
            text = re.sub(rf"(?<!\d){re.escape(secret)}(?!\d)", "***", text)
        else:
            text = text.replace(secret, "***")
    text = _KEYVALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _PDU.sub(lambda m: f"<pdu {len(m.group(0)) // 2} bytes>", text)
    text = _GROUPED.sub(_mask_number, text)
    return _COMPACT.sub(_mask_number, text)


class RedactingFormatter(logging.Formatter):
    """Formats `time level=... logger=... message`, redacted, on one line."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        try:
            line = super().format(record)
        except Exception as exc:   # a bad format string must not lose the event
            line = f"{self.formatTime(record)} level={record.levelname} logger={record.name} " \
                   f"{record.msg!r} (unformattable: {exc!r})"
        line = redact_text(line, self.secrets)
        return line.replace("\r", "").replace("\n", "\\n")


# Kept for callers that attach it to their own handler: redacts the message itself.
class RedactingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...] = ()):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_text(record.getMessage(), self.secrets), None
        return True


def config_secrets(cfg: Config) -> tuple[str, ...]:
    """Every secret in a Config: AMI secret, SIM PINs, web key, SMTP and database passwords."""
    from sqlalchemy.engine import make_url
    found = [cfg.web.secret_key, cfg.keeper.smtp_password]
    found += [cfg.asterisk.secret] if cfg.asterisk is not None else []
    found += [m.pin for m in cfg.modems] + [h.password for h in cfg.hilink]
    try:
        found.append(make_url(cfg.database.url).password or "")
    except Exception:
        pass
    return tuple(s for s in found if s)


def setup_logging(level: str = "INFO", secrets: tuple[str, ...] = (), stream: TextIO | None = None) -> None:
    """Send every log line to STREAM (stdout: journald), redacted, at LEVEL."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
