"""The page's [web].secret_key: judged before `gatewayd web` starts, generated when missing.

Whoever knows the key can sign a session cookie for any user, so a key copied
from the example config, or one short enough to guess, is as good as none.
"""
from __future__ import annotations

import secrets
from pathlib import Path

from .config import ConfigError
from .config_edit import set_keys

MIN_BYTES = 32
HOW_TO_MAKE = "make one with: gatewayd -c CONFIG secret-key   (it writes a random key into [web].secret_key)"
# Values that appear in config.example.toml, the README or the tests: public, so never secret.
_PLACEHOLDER_MARKS = ("change-me", "changeme", "example", "secret-key", "test-secret", "xxxx", "...")
# config.example.toml's value: a key a few edits away from it is found offline by trying them
# against any session cookie the page hands out, so near-copies count as the example too.
EXAMPLE_KEY = "change-me-to-a-long-random-string"
_NEAR = 0.8


def _letters(key: str) -> str:
    return "".join(ch for ch in key.lower() if ch.isalnum())


def _near_example(key: str) -> bool:
    from difflib import SequenceMatcher
    plain, example = _letters(key), _letters(EXAMPLE_KEY)
    return "changeme" in plain or SequenceMatcher(None, plain, example).ratio() >= _NEAR


def problem(key: str) -> str | None:
    """Why KEY must not sign sessions, or None when it may."""
    if not key:
        return "empty"
    lowered = key.lower()
    if any(mark in lowered for mark in _PLACEHOLDER_MARKS) or _near_example(key):
        return "the example value from config.example.toml, which everyone can read"
    if len(key.encode()) < MIN_BYTES:
        return f"{len(key.encode())} bytes; at least {MIN_BYTES} are needed"
    if len(set(key)) < 8:
        return "too few different characters to be random"
    return None


def require_strong(key: str, source: str) -> None:
    """Raise ConfigError (one line, saying how to make a key) unless KEY is fit to sign sessions."""
    why = problem(key)
    if why is not None:
        raise ConfigError(f"{source}: [web].secret_key: {why}; {HOW_TO_MAKE}")


def generate() -> str:
    """A fresh key: 48 random bytes, URL-safe text (64 characters)."""
    return secrets.token_urlsafe(48)


def ensure(config_path: str | Path, current: str) -> bool:
    """Write a generated key into CONFIG_PATH's [web] when CURRENT is missing or weak.

    Returns True when it wrote one; a good key is never replaced (that would log everyone out).
    """
    if problem(current) is None:
        return False
    set_keys(config_path, {("web", "secret_key"): generate()})
    return True
