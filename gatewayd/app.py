"""Wiring: config -> store -> channels -> dispatcher -> control socket, in one place.

`gatewayd run` (and so the systemd unit) calls `run_daemon`; `gatewayd init-db` calls
`init_database`. An alert request from outside the page (the CLI, the control socket,
the HTTP API) goes through `queue_alert`, so each is validated, queued and audited alike.

Heavy imports (SQLAlchemy, the channels) stay inside the functions: `gatewayd alert send`
imports this module on its fast path, through the control socket, without a database.
"""
from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from .config import Config, ConfigError

if TYPE_CHECKING:
    from .nodes import NodeIdentity
    from .store import AlertRequest, EnqueueResult, Store
    from .wakeup import Wakeup

log = logging.getLogger("gatewayd")


def node_name(cfg: Config) -> str:
    return cfg.dispatch.node or socket.gethostname()


def open_store(cfg: Config, check: bool = True, idle_in_transaction: float | None = None) -> Store:
    """The store over CFG's database; CHECK: refuse a schema that is missing or out of date.
    IDLE_IN_TRANSACTION: seconds after which PostgreSQL ends a session idle inside a transaction."""
    from .db import check_schema, make_engine
    from .store import Store
    engine = make_engine(cfg.database.url, idle_in_transaction)
    if check:
        check_schema(engine)
    return Store(engine, cfg.dispatch)


def init_database(cfg: Config) -> NodeIdentity:
    """Create or migrate the schema, seed what a new database starts with (the alert templates) and
    register this box as a node; returns its identity."""
    from .db import migrate
    from .nodes import node_identity, register
    migrate(cfg.database.url)
    store = open_store(cfg, check=False)
    store.seed_templates()
    ident = node_identity(cfg)
    register(store, ident)
    return ident


# ---------------------------------------------------------------------- alert requests from outside
def queue_alert(store: Store, req: AlertRequest, ip: str = "", **audit: Any) -> EnqueueResult:
    """Validate, queue and audit REQ (AUDIT: extra detail for the audit entry); raises GatewaydError."""
    from .model import AuditAction
    result = store.enqueue_alert(req)
    store.audit(req.author, AuditAction.ALERT_SEND,
                {"alert_id": result.alert_id, "category": req.category, "networks": list(req.networks),
                 "messages": result.messages, "drill": req.drill, **audit}, ip)
    return result


def send_alert(store: Store, request: dict[str, Any]) -> dict[str, Any]:
    """Queue one alert from a plain REQUEST (the CLI's fields); the answer as the control socket gives it."""
    from .errors import GatewaydError
    from .store import AlertRequest
    try:
        req = AlertRequest(networks=tuple(request["networks"]), category=request["category"],
                           text=request["text"], texts=dict(request["texts"]), channel=request["channel"],
                           author=request["author"], parent_id=request["parent_id"], drill=bool(request["drill"]))
    except (KeyError, TypeError, ValueError) as exc:
        return {"ok": False, "error": f"control: malformed request ({exc})"}
    try:
        result = queue_alert(store, req)
    except GatewaydError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "alert_id": result.alert_id, "messages": result.messages, "skipped": result.skipped}


def handle_control(store: Store, message: dict[str, Any], wakeup: Wakeup | None = None) -> dict[str, Any]:
    """What the daemon does with one control-socket request."""
    if message.get("op") == "alert.send" and isinstance(message.get("request"), dict):
        answer = send_alert(store, message["request"])
        if wakeup is not None:
            wakeup.notify()       # SQLite has no NOTIFY: the idle workers look now
        return answer
    return {"ok": False, "error": f"control: unknown request {str(message.get('op'))[:40]!r}"}


# ---------------------------------------------------------------------- the daemon
def run_daemon(cfg: Config) -> int:
    """`gatewayd run`: build everything from CFG, serve until SIGTERM/SIGINT, stop in order."""
    from .backup import acquire_daemon_lock
    from .logs import config_secrets, setup_logging
    setup_logging(cfg.logging.level, config_secrets(cfg))
    # Held for the process's life: `gatewayd restore` and a second daemon on this SQLite file are refused.
    daemon_lock = acquire_daemon_lock(cfg.database.url)  # noqa: F841
    parts = _Daemon(cfg)
    # A plain flag, not an Event: a signal handler must not take a lock the main thread may hold.
    stop = {"flag": False}

    def on_signal(_signum: int, _frame: Any) -> None:
        stop["flag"] = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    parts.start()
    try:
        _watch(parts, stop)
    finally:
        parts.stop()
    return 0


class _Daemon:
    """The daemon's parts, built from the config: store, channels, dispatcher, helpers, control socket."""

    def __init__(self, cfg: Config):
        from .channels import build_channels
        from .dispatch import Dispatcher
        from .health import Notifier
        from .nodes import LeaseTiming, NodeLease, node_identity
        from .quota import QuotaTracker
        self.cfg, self.node = cfg, node_name(cfg)
        timing = LeaseTiming.of(cfg)
        # A node frozen inside a transaction must not hold its row locks past its lease (nodes.py).
        self.store = open_store(cfg, idle_in_transaction=timing.idle_in_transaction)
        self.channels = build_channels(cfg)
        if not self.channels:
            raise ConfigError(f"{cfg.source}: no devices configured; add [[modems]], [asterisk] or [[emulated]]")
        if cfg.asterisk is not None:
            from .callback import CallbackDesk
            from .channels.voice import VoiceChannel
            for ch in self.channels:
                if isinstance(ch, VoiceChannel):
                    ch.desk = CallbackDesk(self.store, cfg.asterisk)   # key presses and the callback line
        from .wakeup import Listener, Wakeup
        self.ident = node_identity(cfg)
        # Refuses (one line, exit 2) when another live process holds this node id.
        self.lease = NodeLease(self.store, self.ident, timing, cfg.dispatch.inflight_policy)
        self.lease.acquire()
        self.lease.start()
        self.wakeup = Wakeup()
        self.listener = Listener(self.store.engine, self.wakeup)
        self.listener.start()
        self.notifier = Notifier()
        self.dispatcher = Dispatcher(cfg.dispatch, self.store, self.channels, self.ident.id,
                                     quota=QuotaTracker.from_config(self.store, cfg, node=self.ident.id),
                                     lease=self.lease, wakeup=self.wakeup)
        self.helpers_stop = threading.Event()
        self.control: Any = None

    def start(self) -> None:
        from .keeper import start_keeper
        from .selftest import start_selftest
        cfg = self.cfg
        self.dispatcher.start()
        # The keeper (e-mail may block) and the self-test schedule run on threads of their own.
        start_keeper(cfg.keeper, self.store, self.node, self.helpers_stop,
                     devices=tuple(c.name for c in self.channels), node_id=self.ident.id)
        start_selftest(cfg.selftest, self.store, self.node, self.helpers_stop)
        if cfg.dispatch.control_socket:
            from .control import ControlServer
            self.control = ControlServer(cfg.dispatch.control_socket,
                                         lambda m: handle_control(self.store, m, self.wakeup))
            self.control.start()
        names = ", ".join(f"{c.name} ({c.kind.value})" for c in self.channels)
        log.info("gatewayd running as node %s (%s) with %s", self.ident.id, self.ident.name, names)
        self.notifier.ready(f"dispatching through {names}")

    def stop(self) -> None:
        wait, device = self.dispatcher.stop_wait()
        self.notifier.stopping(may_take=wait + 10.0)
        log.info("stopping: finishing sends in flight (waiting up to %.0f s, the longest a send on %s may take), "
                 "leaving the rest queued", wait, device)
        self.helpers_stop.set()
        if self.control is not None:
            self.control.stop()
        self.dispatcher.stop()
        self.listener.stop()
        self.lease.stop()
        log.info("stopped")


def _watch(parts: _Daemon, stop: dict[str, bool]) -> None:
    """Feed systemd's watchdog while the dispatch loop moves; withhold it when it is stuck."""
    from .health import stuck_after, watchdog_interval
    beat = watchdog_interval() or 1.0
    was_healthy = True
    while not stop["flag"]:
        healthy = parts.dispatcher.healthy(housekeeping_after=stuck_after())
        if healthy:
            parts.notifier.watchdog()
        if healthy != was_healthy:
            (log.info if healthy else log.error)(
                "dispatch loop is moving again; watchdog heartbeat resumed" if healthy else
                "dispatch loop looks stuck; withholding the watchdog heartbeat so systemd restarts it")
            was_healthy = healthy
        time.sleep(min(beat, 1.0))
