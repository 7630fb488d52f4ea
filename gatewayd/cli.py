"""gatewayd <command>: the one entry point for operators, systemd and scripts.

Errors are one clear line on stderr with exit status 2 for bad input; nothing
is half done (each command's writes are one transaction).
"""
from __future__ import annotations

import argparse
import enum
import getpass
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .app import node_name
from .config import Config, ConfigError, load_config
from .errors import GatewaydError
from .outcomes import ChannelKind
from .vocabulary import CATEGORIES_OFFERED, AlertChannel, AuditAction, Language, MemberChannel, Role

if TYPE_CHECKING:           # not at run time: `gatewayd alert send` must not import SQLAlchemy
    from .store import Store

EXIT_BAD_INPUT = 2
log = logging.getLogger("gatewayd")


class CliError(GatewaydError):
    """Bad use of the command line, shown as one line."""


# ---------------------------------------------------------------------- plumbing
def _open_store(cfg: Config, check: bool = True) -> Store:
    from .app import open_store
    return open_store(cfg, check)


# In the order the help offers them: most used first.
_CATEGORY_CHOICES = [c.value for c in CATEGORIES_OFFERED]


def _values(vocabulary: Iterable[enum.Enum]) -> list[str]:
    return [v.value for v in vocabulary]


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


# ---------------------------------------------------------------------- commands
def cmd_init_db(cfg: Config, args: argparse.Namespace) -> int:
    from .app import init_database
    ident = init_database(cfg)
    print("database ready")
    print(f"this gateway is node {ident.id} ({ident.name}; id kept in {ident.path})", file=sys.stderr)
    _ensure_secret_key(cfg)
    return 0


def _ensure_secret_key(cfg: Config) -> None:
    """Give the page a random [web].secret_key when the config file has none (or a weak one)."""
    from . import secret_key
    if secret_key.problem(cfg.web.secret_key) is None:
        return
    if not Path(cfg.source).is_file():
        print(f"gatewayd: no config file to write [web].secret_key into; {secret_key.HOW_TO_MAKE}",
              file=sys.stderr)
        return
    secret_key.ensure(cfg.source, cfg.web.secret_key)
    print(f"wrote a new random [web].secret_key into {cfg.source}")


def cmd_secret_key(cfg: Config, args: argparse.Namespace) -> int:
    """Write a random [web].secret_key into the config unless it already has a good one."""
    from . import secret_key
    if not Path(cfg.source).is_file():
        raise CliError("secret-key: give the config file with -c FILE (or $GATEWAYD_CONFIG)")
    if secret_key.problem(cfg.web.secret_key) is None and not args.renew:
        print(f"{cfg.source}: [web].secret_key is already a good key; kept (--renew replaces it and "
              "logs everyone out)")
        return 0
    from .config_edit import set_keys
    set_keys(cfg.source, {("web", "secret_key"): secret_key.generate()})
    print(f"wrote a new random [web].secret_key into {cfg.source}")
    return 0


def cmd_config_set(cfg: Config, args: argparse.Namespace) -> int:
    """Set SECTION.KEY=VALUE pairs in the config file (checked as a whole before it is written)."""
    import tomllib

    from .config_edit import set_keys
    if not Path(cfg.source).is_file():
        raise CliError("config-set: give the config file with -c FILE (or $GATEWAYD_CONFIG)")
    values = {}
    for pair in args.pairs:
        name, sep, text = pair.partition("=")
        section, dot, key = name.partition(".")
        if not sep or not dot or not section or not key:
            raise CliError(f"config-set: expected SECTION.KEY=VALUE, got {pair!r}")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text                 # a bare word is a string
        values[(section, key)] = value
    set_keys(cfg.source, values)
    print(f"{cfg.source}: set {', '.join(f'[{s}].{k}' for s, k in values)}")
    return 0


def cmd_migrate_to(cfg: Config, args: argparse.Namespace) -> int:
    from .dbcopy import copy_database
    from .nodes import node_id_path
    report = copy_database(cfg.database.url, args.url)
    print(f"copied {report.total} row(s) in {sum(1 for n in report.rows.values() if n)} table(s) "
          f"into {args.url.split('@')[-1]}")
    ident = node_id_path(cfg)
    print(f"next: set [database].url = \"{args.url}\" in {cfg.source}"
          + (f" and [dispatch].node_id_file = \"{ident}\" (this box keeps its node id)" if ident.exists() else "")
          + ", then start gatewayd again", file=sys.stderr)
    return 0


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from .app import run_daemon
    return run_daemon(cfg)


def cmd_web(cfg: Config, args: argparse.Namespace) -> int:
    from web.server import serve

    from .logs import config_secrets, setup_logging
    setup_logging(cfg.logging.level, config_secrets(cfg))
    return serve(cfg) or 0


def cmd_network_add(cfg: Config, args: argparse.Namespace) -> int:
    store = _open_store(cfg)
    net = store.add_network(args.name, args.zone or "")
    store.audit("cli", AuditAction.NETWORK_ADD, {"network": net.name})
    print(net.id)
    return 0


def cmd_member_add(cfg: Config, args: argparse.Namespace) -> int:
    store = _open_store(cfg)
    member = store.add_member(args.network, args.phone, args.name or "", args.channel, args.lang)
    store.audit("cli", AuditAction.MEMBER_ADD, {"network": args.network, "member_id": member.id})
    print(member.id)
    return 0


def cmd_member_import(cfg: Config, args: argparse.Namespace) -> int:
    from .store import ImportFailed
    store = _open_store(cfg)
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CliError(f"file: cannot read {args.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"file: {args.file} is not UTF-8 text; save the CSV as UTF-8") from None
    try:
        imported, errors = store.import_members(args.network, text, args.skip_bad)
    except ImportFailed as exc:
        for e in exc.errors:
            print(e, file=sys.stderr)
        raise CliError(f"{len(exc.errors)} bad row(s) in {args.file}; nothing imported "
                       "(fix them, or use --skip-bad)") from None
    for e in errors:
        print(f"skipped {e}", file=sys.stderr)
    store.audit("cli", AuditAction.MEMBER_IMPORT,
                {"network": args.network, "imported": imported, "skipped": len(errors)})
    print(f"imported {imported} member(s)" + (f", skipped {len(errors)} bad row(s)" if errors else ""))
    return 0


def cmd_alert_send(cfg: Config, args: argparse.Namespace) -> int:
    request = {"networks": list(args.network or ()), "category": args.category, "text": args.text,
               "texts": _texts(args.text_lang), "channel": args.channel,
               "author": args.author or getpass.getuser(), "parent_id": args.parent, "drill": args.drill}
    # The running daemon queues it at once; this process then never imports SQLAlchemy.
    from .control import ask
    answer = ask(cfg.dispatch.control_socket, {"op": "alert.send", "request": request})
    if answer is None:
        from .app import send_alert
        answer = send_alert(_open_store(cfg), request)
    if not answer["ok"]:
        raise CliError(answer["error"])
    print(answer["alert_id"])
    summary = ", ".join(f"{n} {ch}" for ch, n in answer["messages"].items() if n) or "no messages"
    skipped = ", ".join(f"{n} {why}" for why, n in answer["skipped"].items())
    print(f"alert {answer['alert_id']} queued: {summary}" + (f"; not addressed: {skipped}" if skipped else ""),
          file=sys.stderr)
    return 0


def cmd_alert_status(cfg: Config, args: argparse.Namespace) -> int:
    status = _open_store(cfg).alert_status(args.id)
    if args.json:
        _print_json(status)
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(status["messages"].items())) or "no messages"
        print(f"alert {status['id']} ({status['category']}{', drill' if status['drill'] else ''}): "
              f"{status['state']}; {counts}")
    return 0


def cmd_alert_cancel(cfg: Config, args: argparse.Namespace) -> int:
    store = _open_store(cfg)
    n = store.cancel_alert(args.id, args.author or getpass.getuser())
    store.audit(args.author or getpass.getuser(), AuditAction.ALERT_CANCEL, {"alert_id": args.id, "cancelled": n})
    print(f"cancelled {n} message(s) not yet sent")
    return 0


def cmd_alert_approve(cfg: Config, args: argparse.Namespace) -> int:
    store = _open_store(cfg)
    approver = args.author or getpass.getuser()
    store.approve_alert(args.id, approver)
    store.audit(approver, AuditAction.ALERT_APPROVE, {"alert_id": args.id})
    print(f"alert {args.id} approved by {approver}; sending")
    return 0


def cmd_alert_correct(cfg: Config, args: argparse.Namespace) -> int:
    store = _open_store(cfg)
    author = args.author or getpass.getuser()
    result = store.correct_alert(args.id, args.text, _texts(args.text_lang), author)
    store.audit(author, AuditAction.ALERT_CORRECT, {"alert_id": args.id, "correction_id": result.alert_id,
                                          "messages": result.messages})
    print(result.alert_id)
    summary = ", ".join(f"{n} {ch}" for ch, n in result.messages.items() if n) or "nobody had it yet"
    print(f"correction {result.alert_id} of alert {args.id} queued: {summary}; "
          "what had not gone out is cancelled", file=sys.stderr)
    return 0


def cmd_alert_report(cfg: Config, args: argparse.Namespace) -> int:
    from .capacity import configured_seconds
    report = _open_store(cfg).alert_report(args.id)
    sms = sum(max(1, r["segments"]) for r in report["recipients"] if r["channel"] == ChannelKind.SMS)
    calls = sum(1 for r in report["recipients"] if r["channel"] == ChannelKind.VOICE)
    report["estimated_seconds"] = configured_seconds(cfg, sms, calls)
    if args.json:
        _print_json(report)
        return 0
    drill = " (DRILL: nothing left the box)" if report["drill"] else ""
    print(f"alert {report['id']} {report['category']}{drill}: {report['state']}, by {report['author']}")
    est = report["estimated_seconds"]
    print(f"{len(report['recipients'])} message(s); took {report['took_seconds']} s; "
          f"the configured devices need about {'?' if est is None else round(est)} s")
    for r in report["recipients"]:
        print(f"  {r['number']:<16} {r['channel']:<6} {r['state']:<12} {r['reason']}")
    return 0


def _texts(items: list[str] | None) -> dict[str, str]:
    texts = {}
    for item in items or []:
        lang, sep, text = item.partition("=")
        if not sep:
            raise CliError(f"--text-lang: expected LANG=TEXT, got {item!r}")
        texts[lang.strip()] = text
    return texts


def _read_password() -> str:
    if sys.stdin.isatty():
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            raise CliError("password: the two entries differ")
        return pw
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user_add(cfg: Config, args: argparse.Namespace) -> int:
    store = _open_store(cfg)
    user = store.add_user(args.name, _read_password(), args.role, args.zone or "", tuple(args.network or ()))
    store.audit("cli", AuditAction.USER_ADD, {"user": user.username, "role": user.role})
    print(user.id)
    return 0


def status_report(cfg: Config) -> dict[str, Any]:
    """This box's node, every node (last heartbeat, state, devices), every device, the queue."""
    from .model import utcnow
    from .nodes import local_node_id, overview
    from .quota import QuotaTracker
    store = _open_store(cfg)
    devices = store.devices()
    me = local_node_id(cfg)
    quota = QuotaTracker.from_config(store, cfg, node=me)
    for d in devices:
        if d["node"] == me and d["name"] in quota.limits:
            d["quota"] = quota.snapshot(d["name"], utcnow())
    return {"node": node_name(cfg), "node_id": me, "nodes": overview(store, devices), "devices": devices,
            "queue": store.queue_depth()}


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    report = status_report(cfg)
    if args.json:
        _print_json(report)
        return 0
    q = report["queue"]
    print(f"queue: {q['queued']} waiting, {q['sending']} sending, oldest {q['oldest_queued_seconds']} s")
    for n in report["nodes"]:
        age = "never" if n["heartbeat_age_seconds"] is None else f"{n['heartbeat_age_seconds']} s ago"
        me = " (this box)" if n["id"] == report["node_id"] else ""
        print(f"node {n['name'] or '?'} {n['id']}{me}: {n['state']}, last heartbeat {age}")
        for d in n["devices"]:
            sig = "" if d["signal"] is None else f", signal {d['signal']}"
            err = f", last error: {d['last_error']}" if d["last_error"] else ""
            net = (d.get("detail") or {}).get("network")
            domains = ", ".join(f"{k.upper()} {v}" for k, v in
                                ((d.get("detail") or {}).get("registration") or {}).items() if v != "not supported")
            sig += f", {net}" + (f" ({domains})" if domains else "") if net else ""
            print(f"  {d['name']} ({d['kind']}): {d['state']}{sig}, sent {d['sent_count']}, "
                  f"failed {d['failed_count']}{err}")
    return 0


def cmd_doctor(cfg: Config, args: argparse.Namespace) -> int:
    from .channels.base import Check
    checks: list[Check] = []
    try:
        from .db import check_schema, make_engine
        check_schema(make_engine(cfg.database.url))
        checks.append(Check(True, "database", cfg.database.url.split("@")[-1]))
    except Exception as exc:
        checks.append(Check(False, "database", str(exc)))
    for m in cfg.modems:
        from .channels.modem import doctor as modem_doctor
        checks += modem_doctor(m)
    for h in cfg.hilink:
        from .channels.hilink import doctor as hilink_doctor
        checks += hilink_doctor(h)
    if cfg.asterisk is not None:
        from .channels.voice import doctor as voice_doctor
        checks += voice_doctor(cfg.asterisk, cfg.tts)
    for e in cfg.emulated:
        checks.append(Check(True, f"{e.name}", f"emulated {e.kind} device (demo only)"))
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.what}: {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


def cmd_modems_scan(cfg: Config, args: argparse.Namespace) -> int:
    from . import modemscan
    if not 0 < args.timeout <= 30:
        raise CliError(f"--timeout: expected seconds above 0 and at most 30, got {args.timeout:g}")
    reports = modemscan.scan(args.by_id or modemscan.BY_ID_GLOB, tuple(args.tty or modemscan.TTY_GLOBS),
                             args.timeout)
    hilink = modemscan.find_hilink(modemscan.HILINK_URL if args.hilink_url is None else args.hilink_url,
                                   args.timeout)
    print(modemscan.as_json(reports, hilink) if args.json else modemscan.render(reports, hilink), end="")
    return 0 if modemscan.usable(reports, hilink) else 1


# ---------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 2 ** 63 - 1:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to 2^63-1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as every other bad input
        self.exit(EXIT_BAD_INPUT, f"gatewayd: {message} (see gatewayd {self.prog.split(' ', 1)[-1]} --help)\n"
                  if " " in self.prog else f"gatewayd: {message} (see gatewayd --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gatewayd", description="SMS and text-to-voice alert gateway for BIN networks")
    p.add_argument("-c", "--config", help="config file (default: $GATEWAYD_CONFIG)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("init-db", help="create or migrate the schema").set_defaults(func=cmd_init_db)
    sub.add_parser("run", help="the daemon, foreground").set_defaults(func=cmd_run)
    mt = sub.add_parser("migrate-to", help="copy this box's data into a new, empty database (e.g. PostgreSQL)")
    mt.add_argument("url", help="the target, e.g. postgresql+psycopg://gatewayd@db.example/gatewayd")
    mt.set_defaults(func=cmd_migrate_to)
    sub.add_parser("web", help="the police page").set_defaults(func=cmd_web)
    sk = sub.add_parser("secret-key", help="write a random [web].secret_key into the config when it has none")
    sk.add_argument("--renew", action="store_true", help="replace even a good key (logs everyone out)")
    sk.set_defaults(func=cmd_secret_key)
    cs = sub.add_parser("config-set", help="set SECTION.KEY=VALUE in the config file (e.g. web.secure_cookies=true)")
    cs.add_argument("pairs", nargs="+", metavar="SECTION.KEY=VALUE")
    cs.set_defaults(func=cmd_config_set)

    net = sub.add_parser("network", help="networks").add_subparsers(dest="sub", required=True, parser_class=_Parser)
    na = net.add_parser("add")
    na.add_argument("name")
    na.add_argument("--zone")
    na.set_defaults(func=cmd_network_add)

    mem = sub.add_parser("member", help="members").add_subparsers(dest="sub", required=True, parser_class=_Parser)
    ma = mem.add_parser("add")
    ma.add_argument("--network", required=True)
    ma.add_argument("--phone", required=True)
    ma.add_argument("--name")
    ma.add_argument("--channel", choices=_values(MemberChannel))
    ma.add_argument("--lang", default=Language.NL.value, choices=_values(Language))
    ma.set_defaults(func=cmd_member_add)
    mi = mem.add_parser("import")
    mi.add_argument("--network", required=True)
    mi.add_argument("--skip-bad", action="store_true", help="import the good rows, report the bad")
    mi.add_argument("file")
    mi.set_defaults(func=cmd_member_import)

    al = sub.add_parser("alert", help="alerts").add_subparsers(dest="sub", required=True, parser_class=_Parser)
    s = al.add_parser("send")
    s.add_argument("--network", action="append", help="repeat for several networks")
    s.add_argument("--category", required=True, choices=_CATEGORY_CHOICES)
    s.add_argument("--text", required=True)
    s.add_argument("--text-lang", action="append", metavar="LANG=TEXT", help="text for one language")
    s.add_argument("--channel", default=AlertChannel.MEMBER.value, choices=_values(AlertChannel))
    s.add_argument("--parent", type=_positive_int, help="the alert this is feedback to")
    s.add_argument("--drill", action="store_true", help="rehearse: nothing leaves the box")
    s.add_argument("--author")
    s.set_defaults(func=cmd_alert_send)
    st = al.add_parser("status")
    st.add_argument("id", type=_positive_int)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_alert_status)
    ca = al.add_parser("cancel")
    ca.add_argument("id", type=_positive_int)
    ca.add_argument("--author")
    ca.set_defaults(func=cmd_alert_cancel)
    ap = al.add_parser("approve", help="four-eyes: release an alert another user wrote")
    ap.add_argument("id", type=_positive_int)
    ap.add_argument("--author", help="who approves (default: your login name)")
    ap.set_defaults(func=cmd_alert_approve)
    co = al.add_parser("correct", help="supersede an alert: tell those who had it, cancel the rest")
    co.add_argument("id", type=_positive_int)
    co.add_argument("--text", required=True)
    co.add_argument("--text-lang", action="append", metavar="LANG=TEXT")
    co.add_argument("--author")
    co.set_defaults(func=cmd_alert_correct)
    rp = al.add_parser("report", help="per recipient: what went (or in a drill would have gone) to whom")
    rp.add_argument("id", type=_positive_int)
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=cmd_alert_report)

    us = sub.add_parser("user", help="users").add_subparsers(dest="sub", required=True, parser_class=_Parser)
    ua = us.add_parser("add", help="password on stdin")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=_values(Role))
    ua.add_argument("--zone")
    ua.add_argument("--network", action="append", help="a coordinator's network (repeat)")
    ua.set_defaults(func=cmd_user_add)

    stt = sub.add_parser("status", help="devices and queue")
    stt.add_argument("--json", action="store_true")
    stt.set_defaults(func=cmd_status)
    sub.add_parser("doctor", help="probe modems and Asterisk, say what is wrong").set_defaults(func=cmd_doctor)
    mo = sub.add_parser("modems", help="USB modems").add_subparsers(dest="sub", required=True, parser_class=_Parser)
    sc = mo.add_parser("scan", help="probe every serial port: which is the modem (sends no SMS, enters no PIN)")
    sc.add_argument("--json", action="store_true")
    sc.add_argument("--by-id", metavar="GLOB", help="stable port names (default /dev/serial/by-id/*)")
    sc.add_argument("--tty", action="append", metavar="GLOB",
                    help="other ports, repeat (default /dev/ttyUSB* and /dev/ttyACM*)")
    sc.add_argument("--timeout", type=float, default=1.0, help="seconds per AT command (default 1)")
    sc.add_argument("--hilink-url", metavar="URL", help="where to look for a HiLink dongle's web API "
                    "(default http://192.168.8.1/; \"\" to skip)")
    sc.set_defaults(func=cmd_modems_scan)

    from . import cli_ops
    cli_ops.register(sub, _Parser)
    cli_ops.register_member(mem)
    return p


# Files the daemon, the page and the CLI create (the database and its -wal/-shm, backups,
# exports, the lock) hold members' personal data: never readable by other local users,
# whatever the caller's umask. A stricter umask is kept.
PRIVATE_UMASK = 0o027


def keep_files_private() -> None:
    os.umask(os.umask(0) | PRIVATE_UMASK)


def main(argv: list[str] | None = None) -> int:
    keep_files_private()
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        return int(args.func(cfg, args))
    except (ConfigError, GatewaydError) as exc:
        print(f"gatewayd: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import OperationalError
        if isinstance(exc, OperationalError):
            print(f"gatewayd: database error: {exc.orig}; check [database].url and run 'gatewayd init-db'",
                  file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
