"""Change single keys of a TOML config file in place, keeping its comments and layout.

For the few keys tools write (the page's secret key, HTTPS settings); only
plain [section] tables, one `key = value` per line. The result is parsed again
before it replaces the file, so a failed edit never leaves a broken config.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from pathlib import Path

from .config import ConfigError, parse_config

_SECTION = re.compile(r"^\s*\[([A-Za-z0-9_]+)\]\s*(#.*)?$")
_ANY_TABLE = re.compile(r"^\s*\[")


def toml_value(value: object) -> str:
    """VALUE as a TOML literal (strings, booleans, numbers, lists of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)        # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _set_one(lines: list[str], section: str, key: str, literal: str) -> list[str]:
    start = next((i for i, ln in enumerate(lines) if (m := _SECTION.match(ln)) and m.group(1) == section), None)
    if start is None:
        tail = [] if not lines or lines[-1].strip() == "" else [""]
        return lines + tail + [f"[{section}]", f"{key} = {literal}"]
    end = next((i for i in range(start + 1, len(lines)) if _ANY_TABLE.match(lines[i])), len(lines))
    pattern = re.compile(rf"^(\s*){re.escape(key)}\s*=")
    for i in range(start + 1, end):
        if m := pattern.match(lines[i]):
            lines[i] = f"{m.group(1)}{key} = {literal}"
            return lines
    return lines[:start + 1] + [f"{key} = {literal}"] + lines[start + 1:]


def set_keys(path: str | Path, values: dict[tuple[str, str], object]) -> None:
    """Set each (section, key) of VALUES in the config at PATH; raises ConfigError when it cannot."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from None
    lines = text.splitlines()
    for (section, key), value in values.items():
        lines = _set_one(lines, section, key, toml_value(value))
    new = "\n".join(lines) + "\n"
    try:
        raw = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: cannot set {', '.join(k for _, k in values)} here (the file's layout is "
                          f"unusual: {exc}); edit it by hand") from None
    parse_config(raw, str(p))
    mode = p.stat().st_mode & 0o777
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gatewayd-", dir=p.parent)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot write the config here ({exc.strerror}); run it as the file's owner "
                          "(sudo gatewayd ...)") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, mode)
        try:
            st = p.stat()
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            pass                         # not root: the file stays ours, as it was
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
