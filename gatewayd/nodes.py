"""Node identity, heartbeat and leases: several gateways draining one PostgreSQL queue.

A node is one `gatewayd run`. Its id is made once per box (`ensure_node_id`,
at `init-db` or the first run), kept in a file where the box keeps its state,
and never derived from the host name: cloned SD cards share a host name, a
renamed box would get a new one.

While it runs, a node holds a lease on what it has in `sending`:

* it writes `node.heartbeat_at` (the database's clock, so the boxes' clocks
  need not agree) every `heartbeat_seconds`;
* it claims only while its last beat that got through is younger than
  FENCE_BEATS beats (`NodeLease.held`): a node cut off from the database stops
  taking work before anyone may take its work over;
* another node takes its `sending` messages over (crash policy: resend once,
  flagged possible_duplicate) once it was silent for `lease_seconds`: the
  fence, plus the longest send it may have in flight, plus one beat.

A node frozen between two statements of a transaction (SIGSTOP, a paused VM,
a hung box) keeps its session open with the row locks it took; the takeover
of its sends needs those very rows. So the daemon's sessions end on the server
once idle inside a transaction for the fence (`idle_in_transaction`): its
work is rolled back and its locks freed well before its lease runs out. A
healthy node is never idle that long inside one: no transaction spans a send.
The takeover also waits at most one beat for a lock (`lock_timeout`) and tries
again at the next beat, so a lock held by any other session cannot stop this
node's own heartbeat, which runs on the same thread.

On PostgreSQL a node also holds a session advisory lock on its id for its
whole life: a second process with the same id (a clone, a second unit) is
refused at start, and the lock goes when the process dies, however it dies.
On SQLite the daemon's flock on the database does the same (gatewayd/backup.py).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from .config import Config
from .errors import GatewaydError
from .model import AuditAction, AuditEntry, Message, MessageState, Node, NodeState, utcnow
from .store import RecoveryReport, Store

log = logging.getLogger("gatewayd.nodes")

DEFAULT_NODE_ID_FILE = Path("/var/lib/gatewayd/node-id")
FENCE_BEATS = 3                # beats without one getting through before a node stops claiming
EMULATED_SEND_MARGIN = 1.0     # seconds beyond an emulated device's latency
VOICE_SEND_SECONDS = 900.0     # a long voice call, read twice (dispatch.MAX_SEND_SECONDS)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout ran out
_NODE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class NodeError(GatewaydError):
    """The node id cannot be read, made or used; the message says what to do."""


class NodeAlreadyRunning(NodeError):
    """Another live process holds this node id."""


@dataclass(frozen=True)
class NodeIdentity:
    id: str
    name: str          # a label for people; the id is what counts
    path: Path         # the file the id lives in


# ---------------------------------------------------------------------- identity
def node_id_path(cfg: Config) -> Path:
    """Where this box keeps its node id: [dispatch].node_id_file, else beside the SQLite
    database, else the appliance's state directory."""
    if cfg.dispatch.node_id_file:
        return Path(cfg.dispatch.node_id_file)
    u = make_url(cfg.database.url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        db = Path(u.database)
        return db.with_name(db.name + ".node-id")
    return DEFAULT_NODE_ID_FILE


def ensure_node_id(path: Path) -> str:
    """The id stored in PATH; made (a random UUID) when the file does not exist yet."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _create_node_id(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"{path}: cannot read the node id ({exc}); check its permissions") from None
    if not _NODE_ID.match(text):
        raise NodeError(f"{path}: {text[:40]!r} is not a node id; delete the file and run "
                        "'gatewayd init-db' to make a new one")
    return text


def _create_node_id(path: Path) -> str:
    new = str(uuid.uuid4())
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(new + "\n", encoding="ascii")
        try:
            os.link(tmp, path)      # atomic, and never over an id another process just made
        except FileExistsError:
            return ensure_node_id(path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise NodeError(f"{path}: cannot create the node id file ({exc.strerror}); run 'gatewayd init-db' "
                        "as the user that runs gatewayd, or set [dispatch].node_id_file") from None
    log.info("this gateway's node id is %s (kept in %s)", new, path)
    return new


def node_identity(cfg: Config) -> NodeIdentity:
    path = node_id_path(cfg)
    return NodeIdentity(ensure_node_id(path), cfg.dispatch.node or socket.gethostname(), path)


def register(store: Store, ident: NodeIdentity) -> None:
    """Make sure the node has its row (init-db); its lease starts at its first run."""
    with store.engine.begin() as c:
        if c.scalar(select(Node.id).where(Node.id == ident.id)) is None:
            c.execute(insert(Node).values(id=ident.id, name=ident.name[:120], host=socket.gethostname()[:255],
                                          lease_seconds=0.0, created_at=utcnow()))
        else:
            c.execute(update(Node).where(Node.id == ident.id).values(name=ident.name[:120]))


# ---------------------------------------------------------------------- timing
def longest_send(cfg: Config) -> float:
    """Seconds the longest single send of this node's devices may take."""
    longest = [0.0]
    longest += [m.send_timeout * cfg.sms.max_segments + m.command_timeout for m in cfg.modems]
    longest += [h.send_timeout + h.timeout for h in cfg.hilink]
    longest += [e.latency + EMULATED_SEND_MARGIN for e in cfg.emulated]
    if cfg.asterisk is not None:
        longest.append(VOICE_SEND_SECONDS)
    return max(longest)


@dataclass(frozen=True)
class LeaseTiming:
    heartbeat: float       # seconds between beats
    longest_send: float    # seconds

    @property
    def fence(self) -> float:
        """A node claims nothing once no beat got through for this long."""
        return FENCE_BEATS * self.heartbeat

    @property
    def lease(self) -> float:
        """Others wait this long after the last beat: by then whatever it sent has ended."""
        return self.fence + self.longest_send + self.heartbeat

    @property
    def idle_in_transaction(self) -> float:
        """PostgreSQL ends a session idle inside a transaction this long: a process that waits that long
        between two statements is frozen (or starved past its own fence), and its locks must be gone
        before its lease runs out, when another node takes its sends over."""
        return self.fence

    @classmethod
    def of(cls, cfg: Config) -> "LeaseTiming":
        return cls(cfg.dispatch.heartbeat_seconds, longest_send(cfg))


def db_now(c: Connection) -> datetime:
    """The database's clock (PostgreSQL), or ours (SQLite: one box, one clock)."""
    if c.dialect.name == "postgresql":
        return cast(datetime, c.scalar(select(func.now())))
    return utcnow()


def _lock_key(node_id: str) -> int:
    """A signed 64-bit advisory-lock key for NODE_ID."""
    return int.from_bytes(hashlib.sha256(f"gatewayd-node:{node_id}".encode()).digest()[:8], "big", signed=True)


# ---------------------------------------------------------------------- the lease
class NodeLease:
    """This process's hold on its node id: the lock, the heartbeat, the fence; see the module docstring."""

    def __init__(self, store: Store, ident: NodeIdentity, timing: LeaseTiming, policy: str = "resend"):
        self.store = store
        self.ident = ident
        self.timing = timing
        self.policy = policy
        self._pg = store.engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._last_ok = float("-inf")        # monotonic time the last successful beat was sent
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -------------------------------------------------------------- start, stop
    def acquire(self) -> None:
        """Take the node id for this process and start the lease; NodeAlreadyRunning when taken."""
        self._conn = self.store.engine.connect()
        if self._pg and not self._try_lock(self._conn):
            holder = self._holder()
            self._conn.close()
            self._conn = None
            raise NodeAlreadyRunning(
                f"node {self.ident.id} is already running ({holder}); a second gatewayd with the same node id "
                f"would send messages twice. If this box is a copy of another (a cloned SD card), delete "
                f"{self.ident.path} here and start again: it gets its own id")
        sent = time.monotonic()
        with self.store.engine.begin() as c:
            now = db_now(c)
            values = dict(name=self.ident.name[:120], host=socket.gethostname()[:255], pid=os.getpid(),
                          started_at=now, heartbeat_at=now, lease_seconds=self.timing.lease, stopped_at=None)
            if not c.execute(update(Node).where(Node.id == self.ident.id).values(**values)).rowcount:
                c.execute(insert(Node).values(id=self.ident.id, created_at=now, **values))
        self._last_ok = sent

    def start(self) -> None:
        """Beat (and look for silent nodes) on a thread of its own until stop()."""
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and say so; the lock goes with the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            with self.store.engine.begin() as c:
                c.execute(update(Node).where(Node.id == self.ident.id).values(stopped_at=db_now(c)))
        except Exception:
            log.exception("could not record that node %s stopped", self.ident.id)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def shared(self) -> bool:
        """Can other nodes take this node's claims over (PostgreSQL)? Then a claim is re-checked in the
        database right before its send (dispatch: fencing); SQLite has one daemon per file."""
        return self._pg

    # -------------------------------------------------------------- the beat
    def held(self) -> bool:
        """May this node claim now? Only while a recent beat got through. On SQLite always: one
        daemon per database file (its flock), so nobody else could take its work over."""
        return not self._pg or time.monotonic() - self._last_ok < self.timing.fence

    def beat(self) -> None:
        """Renew the lease. Timed from before the statement: the database stamps a later time."""
        sent = time.monotonic()
        if self._conn is None or self._conn.invalidated or self._conn.closed:
            self._reconnect()
        c = self._conn
        assert c is not None        # _reconnect() opened it or raised
        try:
            now = db_now(c)
            changed = c.execute(update(Node).where(Node.id == self.ident.id)
                                .values(heartbeat_at=now, lease_seconds=self.timing.lease)).rowcount
            c.commit()
        except Exception:
            c.invalidate()
            raise
        if not changed:
            raise NodeError(f"node {self.ident.id} has no row in the node table; run 'gatewayd init-db'")
        self._last_ok = sent

    def _reconnect(self) -> None:
        """A new connection after the old one broke: the advisory lock went with it."""
        if self._conn is not None:
            self._conn.close()
        self._conn = self.store.engine.connect()
        if self._pg and not self._try_lock(self._conn):
            self._conn.close()
            self._conn = None
            raise NodeAlreadyRunning(f"node {self.ident.id} was taken by another process ({self._holder()}) "
                                     "while this one was cut off; this one claims nothing more")

    def _try_lock(self, c: Connection) -> bool:
        got = bool(c.scalar(select(func.pg_try_advisory_lock(_lock_key(self.ident.id)))))
        c.commit()
        return got

    def _holder(self) -> str:
        with self.store.engine.connect() as c:
            row = c.execute(select(Node.host, Node.pid, Node.heartbeat_at).where(Node.id == self.ident.id)).first()
            now = db_now(c)
        if row is None or row.heartbeat_at is None:
            return "by a process that has not beaten yet"
        return (f"on host {row.host or '?'}, pid {row.pid or '?'}, last heartbeat "
                f"{(now - row.heartbeat_at).total_seconds():.1f} s ago")

    def _run(self) -> None:
        was_held = True
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception as exc:
                log.error("node %s could not renew its lease: %s", self.ident.id, exc)
            held = self.held()
            if held != was_held:
                (log.warning if held else log.error)(
                    "lease renewed: claiming again" if held else
                    f"no heartbeat got through for {self.timing.fence:.0f} s: claiming nothing until one does")
                was_held = held
            try:
                take_over_silent(self.store, self.ident.id, self.policy, lock_wait=self.timing.heartbeat)
            except Exception:
                log.exception("looking for silent nodes failed; trying again at the next beat")
            self._stop.wait(self.timing.heartbeat)


# ---------------------------------------------------------------------- taking over
@dataclass(frozen=True)
class Takeover:
    node: str
    silent_seconds: float
    report: RecoveryReport


def silent_nodes(c: Connection, now: datetime) -> list[tuple[str, float]]:
    """(node id, seconds silent) of every node whose lease ran out, at the database's time NOW."""
    rows = c.execute(select(Node.id, Node.heartbeat_at, Node.lease_seconds)
                     .where(Node.heartbeat_at.is_not(None))).all()
    return [(r.id, (now - r.heartbeat_at).total_seconds()) for r in rows
            if r.heartbeat_at + timedelta(seconds=r.lease_seconds) < now]


def take_over_silent(store: Store, me: str, policy: str = "resend", lock_wait: float = 1.0) -> list[Takeover]:
    """Resolve the `sending` messages of every node whose lease ran out, under the crash policy.

    Each node is handled in one transaction holding its row locked: its own
    heartbeat waits meanwhile, and its lease is checked again under the lock,
    so a node that beat in the meantime keeps its claims. A row another session
    holds locked (a node frozen mid-transaction) is waited for at most LOCK_WAIT
    seconds; that node is then tried again at the next call.
    """
    with store.engine.connect() as c:
        now = db_now(c)
        candidates = [n for n, _ in silent_nodes(c, now) if n != me]
        if candidates:
            candidates = list(c.scalars(select(Message.node).distinct().where(
                Message.state == MessageState.SENDING.value, Message.node.in_(candidates))))
    done = []
    for node in candidates:
        try:
            taken = _take_over(store, me, node, policy, lock_wait)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            log.warning("node %s is silent but a row of its sends is still locked by an open transaction "
                        "(its own, frozen?); trying again at the next beat", node)
            continue
        if taken is not None:
            done.append(taken)
    return done


def _take_over(store: Store, me: str, node: str, policy: str, lock_wait: float) -> Takeover | None:
    with store.engine.begin() as c:
        if c.dialect.name == "postgresql":       # for this transaction only
            c.execute(select(func.set_config("lock_timeout", f"{max(1, round(lock_wait * 1000))}ms", True)))
        row = c.execute(select(Node.heartbeat_at, Node.lease_seconds).where(Node.id == node)
                        .with_for_update(skip_locked=True)).first()
        now = db_now(c)
        if row is None or row.heartbeat_at + timedelta(seconds=row.lease_seconds) >= now:
            return None          # another node is at it, or it beat again: its claims are its own
        silent = (now - row.heartbeat_at).total_seconds()
        report = store.recover_inflight(node, policy, now, conn=c,
                                        why=f"node {node} went silent ({silent:.0f} s; taken over by node {me})")
        if not (report.resent or report.failed or report.cancelled):
            return None
        c.execute(insert(AuditEntry).values(
            at=now, actor=f"node:{me}"[:80], action=AuditAction.NODE_TAKEOVER.value, ip="",
            detail={"node": node, "silent_seconds": round(silent, 1), "resent": report.resent,
                    "failed": report.failed, "cancelled": report.cancelled, "policy": policy}))
        from .wakeup import wake
        wake(c)
    log.warning("node %s was silent for %.0f s (lease %.0f s): took over its %d message(s) in flight: "
                "%d queued again (flagged possible_duplicate), %d failed, %d cancelled (opted out)", node, silent,
                row.lease_seconds, report.resent + report.failed + report.cancelled, report.resent, report.failed,
                report.cancelled)
    return Takeover(node, silent, report)


# ---------------------------------------------------------------------- what status and the page show
def local_node_id(cfg: Config) -> str | None:
    """This box's node id when it has one already (read only: status and the page never make one)."""
    try:
        return ensure_node_id(node_id_path(cfg)) if node_id_path(cfg).exists() else None
    except NodeError:
        return None


def overview(store: Store, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every node with its last heartbeat, whether it is live, and its DEVICES (as Store.devices gives them)."""
    with store.engine.connect() as c:
        now = db_now(c)
        rows = c.execute(select(Node).order_by(Node.name, Node.id)).mappings().all()
    by_node: dict[str, list[dict[str, Any]]] = {}
    for d in devices:
        by_node.setdefault(d["node"], []).append(d)
    out = []
    for r in rows:
        beat = r["heartbeat_at"]
        age = None if beat is None else round((now - beat).total_seconds(), 1)
        out.append({"id": r["id"], "name": r["name"], "host": r["host"], "pid": r["pid"],
                    "heartbeat_at": beat.isoformat() if beat else None, "heartbeat_age_seconds": age,
                    "lease_seconds": round(r["lease_seconds"] or 0.0, 1), "state": _node_state(r, age).value,
                    "devices": by_node.pop(r["id"], [])})
    for node, devs in by_node.items():      # devices of a node that has no row (written before nodes had ids)
        out.append({"id": node, "name": "", "host": "", "pid": None, "heartbeat_at": None,
                    "heartbeat_age_seconds": None, "lease_seconds": 0.0, "state": NodeState.UNKNOWN.value,
                    "devices": devs})
    return out


def _node_state(row: Any, age: float | None) -> "NodeState":
    if row["stopped_at"] is not None and (row["heartbeat_at"] is None or row["stopped_at"] >= row["heartbeat_at"]):
        return NodeState.STOPPED
    if age is None:
        return NodeState.NEVER_RAN
    return NodeState.SILENT if age > (row["lease_seconds"] or 0.0) else NodeState.RUNNING
