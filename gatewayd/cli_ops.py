"""Operations commands: backup, restore, member export / erase, purge.

Registered into the CLI by `register` (top level) and `register_member`
(under `gatewayd member`). Each command is one clear line on failure
(GatewaydError, exit status 2) and audited when it changes data.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config
from .vocabulary import AuditAction

if TYPE_CHECKING:
    from .store import Store


def _store(cfg: Config) -> Store:
    from .app import open_store
    return open_store(cfg)


def cmd_backup(cfg: Config, args: argparse.Namespace) -> int:
    """gatewayd backup FILE"""
    from .backup import backup
    info = backup(cfg.database.url, args.file)
    print(f"backup written to {info.path} ({info.size} bytes, {info.messages} messages)")
    return 0


def cmd_restore(cfg: Config, args: argparse.Namespace) -> int:
    """gatewayd restore FILE (refused while gatewayd run uses the database)"""
    from .backup import restore
    info = restore(cfg.database.url, args.file)
    _store(cfg).audit(args.actor or "cli", AuditAction.DATABASE_RESTORE, {"from": str(info.restored_from)})
    kept = f"; the previous database is kept as {info.previous}" if info.previous else ""
    print(f"restored {info.messages} messages from {info.restored_from}{kept}")
    return 0


def cmd_member_export(cfg: Config, args: argparse.Namespace) -> int:
    """gatewayd member export NUMBER [-o FILE]: everything held about a person, JSON."""
    from .store.gdpr import export_member
    store = _store(cfg)
    data = export_member(store, args.number)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if args.output:
        # Personal data: readable by the owner only.
        from .errors import CannotWrite
        try:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                # 0600 applies only to a new file: an existing one is made private before a
                # byte is written (and refused when it is not ours to make private).
                os.fchmod(fd, 0o600)
                os.ftruncate(fd, 0)
                f.write(text)
        except OSError as exc:
            raise CannotWrite(args.output, exc.strerror) from None
    else:
        sys.stdout.write(text)
    store.audit(args.actor or "cli", AuditAction.MEMBER_EXPORT, {"member_id": (data["member"] or {}).get("id")})
    return 0


def cmd_member_erase(cfg: Config, args: argparse.Namespace) -> int:
    """gatewayd member erase NUMBER: delete the member, blank their number and texts, keep counts."""
    from .store.gdpr import erase_member
    r = erase_member(_store(cfg), args.number, args.actor or "cli")
    print(f"erased: member {'record deleted' if r.member_id else 'record not found'}, "
          f"{r.messages} delivery record(s) anonymised ({r.cancelled} not yet sent, cancelled), "
          f"{r.replies} repl{'y' if r.replies == 1 else 'ies'} anonymised")
    return 0


def cmd_purge(cfg: Config, args: argparse.Namespace) -> int:
    """gatewayd purge [--days N]: retention, default [retention].days."""
    from .store.gdpr import purge
    days = cfg.retention.days if args.days is None else args.days
    store = _store(cfg)
    r = purge(store, days)
    if days <= 0:
        print("retention is 0 days (keep forever): nothing purged")
        return 0
    if r.messages or r.replies:
        store.audit("purge", AuditAction.RETENTION_PURGE, r.as_dict())
    print(f"purged text and number of {r.messages} message(s) and {r.replies} repl(ies) "
          f"from before {r.before:%Y-%m-%d %H:%M} UTC")
    return 0


def _days(text: str) -> int:
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("expected 0 or more days")
    return value


def register(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add the operations subcommands to SUB (an argparse subparsers object)."""
    b = sub.add_parser("backup", help="consistent copy of the SQLite database (safe while running)")
    b.add_argument("file", type=Path)
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="replace the database with a backup (stop gatewayd run first)")
    r.add_argument("file", type=Path)
    r.add_argument("--actor", help="who restores, for the audit log")
    r.set_defaults(func=cmd_restore)
    p = sub.add_parser("purge", help="retention: blank old message texts and numbers, keep counts")
    p.add_argument("--days", type=_days, help="override [retention].days")
    p.set_defaults(func=cmd_purge)


def register_member(member_sub: Any) -> None:
    """Add `member export` and `member erase` to the `gatewayd member` subparsers."""
    e = member_sub.add_parser("export", help="everything held about a person, as JSON")
    e.add_argument("number")
    e.add_argument("-o", "--output", help="write to this file (mode 0600) instead of stdout")
    e.add_argument("--actor", help="who asks, for the audit log")
    e.set_defaults(func=cmd_member_export)
    x = member_sub.add_parser("erase", help="delete a person's data (keeps anonymous counts)")
    x.add_argument("number")
    x.add_argument("--actor", help="who erases, for the audit log")
    x.set_defaults(func=cmd_member_erase)
