"""Alerting the keeper: tell the technical contact when the box needs a person.

Problems watched (`Keeper.check`, called periodically by the daemon):

* a device down (not `up`) for longer than `[keeper].device_down_minutes`;
* a SIM out of credit: the modem channel sets `DeviceHealth.detail["out_of_credit"]
  = True` (or its last error mentions credit / balance); reported at once;
* a gateway of the shared queue silent past its lease (told by one live node);
* messages left in `sending` under a node name no gateway runs as (no lease to run out);
* the queue stuck: a message due for sending has waited longer than
  `[keeper].queue_stuck_minutes` and no send was attempted in that time
  (prevention messages held by quiet hours do not count).

Each problem is told once when it starts, reminded every `repeat_hours` while
it lasts (0: never), and once more when it is over. What was told is kept in
the database (`setting` row `keeper:<node>`), so a restart does not repeat it.

Through whichever path still works: an SMS via the queue (only when an SMS
device is up and has credit; system messages go before any alert) and an
e-mail via SMTP. A notice that no path took is tried again at the next check.
"""
from __future__ import annotations

import logging
import re
import smtplib
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Callable

from sqlalchemy import func, select

from .config import KeeperConfig
from .logs import redact_text
from .model import Attempt, Category, Message, MessageState, NodeState, utcnow
from .outcomes import ChannelKind, DeviceState
from .phone import parse_phone
from .schedule import in_quiet_hours
from .selftest import failed_selftest
from .store import Store

log = logging.getLogger("gatewayd.keeper")

_CREDIT = re.compile(r"credit|balance|insufficient funds", re.IGNORECASE)
SMS_LIMIT = 300          # characters: two or three segments at most
SMTP_TIMEOUT = 15.0      # seconds; the keeper must not hold up the daemon for long
PREVENTION = Category.PREVENTION.priority   # Message.priority of prevention messages


@dataclass(frozen=True)
class Problem:
    key: str             # stable identity, e.g. "device-down:modem1"
    summary: str         # one line for a person; no member data
    grace: timedelta     # how long it must last before it is told


@dataclass(frozen=True)
class Notice:
    key: str
    kind: str            # problem | reminder | resolved
    text: str
    via: tuple[str, ...]  # the paths that took it: "sms", "email"


class Keeper:
    """Watches devices and queue in STORE and tells the contact in CFG; see the module docstring."""

    def __init__(self, cfg: KeeperConfig, store: Store, node: str = "",
                 in_quiet_hours: Callable[[datetime], bool] | None = None,
                 devices: tuple[str, ...] | None = None, node_id: str | None = None):
        self.cfg = cfg
        # This daemon's node id: its devices are the ones with this node (names repeat across nodes).
        self.node_id = node_id
        # The daemon's own device names: a record left by a modem since removed
        # from the config must not be reported down for ever.
        self.devices = None if devices is None else frozenset(devices)
        self.store = store
        self.node = node or socket.gethostname()
        self.state_key = f"keeper:{self.node}"[:80]
        # A callable(now) -> bool: whether prevention messages are held right now.
        self.in_quiet_hours = in_quiet_hours or self._quiet_hours
        self.sms_to = parse_phone(cfg.sms_to).e164 if cfg.sms_to else ""

    # ------------------------------------------------------------------ detection
    def problems(self, now: datetime) -> dict[str, Problem]:
        """The problems visible right now, before their grace periods."""
        found: dict[str, Problem] = {}
        for d in self._current_devices():
            if d["state"] != DeviceState.UP:
                why = f": {redact_text(d['last_error'])}" if d["last_error"] else ""
                found[f"device-down:{d['name']}"] = Problem(
                    f"device-down:{d['name']}", f"device {d['name']} is {d['state']}{why}",
                    timedelta(minutes=self.cfg.device_down_minutes))
            if _out_of_credit(d):
                found[f"no-credit:{d['name']}"] = Problem(
                    f"no-credit:{d['name']}", f"SIM in {d['name']} is out of credit; top it up", timedelta(0))
        for n in self._silent_nodes():
            label = f"{n['name']} ({n['id']})" if n["name"] else n["id"]
            found[f"node-silent:{n['id']}"] = Problem(
                f"node-silent:{n['id']}", f"gateway {label} is silent: last heartbeat "
                f"{n['heartbeat_age_seconds']:.0f} s ago; its sends in flight were taken over", timedelta(0))
        orphaned = self._orphaned_sending(now)
        if orphaned:
            found["sending-orphaned"] = Problem("sending-orphaned", orphaned, timedelta(0))
        stuck = self._queue_stuck(now)
        if stuck:
            found["queue-stuck"] = Problem("queue-stuck", stuck, timedelta(0))
        selftest = failed_selftest(self.store, self.node)
        if selftest:
            found["selftest"] = Problem("selftest", selftest, timedelta(0))
        return found

    def _current_devices(self) -> list[dict[str, Any]]:
        """The devices watched: those this daemon runs when given, else every device record."""
        return [d for d in self.store.devices() if (self.devices is None or d["name"] in self.devices)
                and (self.node_id is None or d["node"] == self.node_id)]

    def _silent_nodes(self) -> list[dict[str, Any]]:
        """Nodes gone silent, told by one live node only: the one with the smallest id."""
        from .nodes import overview
        nodes = overview(self.store, [])
        live = sorted(n["id"] for n in nodes if n["state"] == NodeState.RUNNING.value)
        if self.node_id is None or not live or live[0] != self.node_id:
            return []
        return [n for n in nodes if n["state"] == NodeState.SILENT.value]

    def _quiet_hours(self, now: datetime) -> bool:
        p = self.store.policy
        return in_quiet_hours(now, p.quiet_hours, p.timezone)

    def _orphaned_sending(self, now: datetime) -> str:
        """A sentence when messages sit in `sending` under a node no gateway runs as (no lease to run out)."""
        from .model import Node
        limit = now - timedelta(minutes=self.cfg.queue_stuck_minutes)
        with self.store.engine.connect() as c:
            nodes = c.scalars(select(Message.node).distinct().where(
                Message.state == MessageState.SENDING.value, Message.updated_at <= limit,
                Message.node.not_in(select(Node.id).where(Node.heartbeat_at.is_not(None))))).all()
        if not nodes:
            return ""
        return (f"messages stuck in sending for over {self.cfg.queue_stuck_minutes:g} min under node(s) "
                f"{', '.join(str(n) for n in nodes[:3])} that no gateway runs as; start that node, or resolve them")

    def _queue_stuck(self, now: datetime) -> str:
        """A sentence when due messages have waited past the threshold with no attempt meanwhile, else ''."""
        limit = now - timedelta(minutes=self.cfg.queue_stuck_minutes)
        due = (Message.state == MessageState.QUEUED.value) | (
            (Message.state == MessageState.RETRY.value) & (Message.not_before <= now))
        q = select(Message.id).where(due, Message.created_at <= limit)
        if self.in_quiet_hours(now):
            q = q.where(Message.priority != PREVENTION)
        with self.store.connection() as c:
            if c.scalar(q.limit(1)) is None:
                return ""
            if c.scalar(select(Attempt.id).where(Attempt.started_at >= limit).limit(1)) is not None:
                return ""
            waiting = c.scalar(select(func.count()).select_from(Message).where(due))
        return (f"queue stuck: messages have waited over {self.cfg.queue_stuck_minutes:g} min "
                f"and nothing was sent meanwhile ({waiting or 'some'} due)")

    # ------------------------------------------------------------------ the check
    def check(self, now: datetime | None = None) -> list[Notice]:
        """Compare what is wrong now with what was told; tell what is new, due a reminder, or over."""
        now = now or utcnow()
        current = self.problems(now)
        told = self._load()
        notices: list[Notice] = []
        for key, p in current.items():
            entry = told.setdefault(key, {"since": now.isoformat(), "notified_at": None})
            since = datetime.fromisoformat(entry["since"])
            notified = datetime.fromisoformat(entry["notified_at"]) if entry["notified_at"] else None
            entry["summary"] = p.summary
            if notified is None and now - since >= p.grace:
                kind = "problem"
            elif notified is not None and self.cfg.repeat_hours > 0 and \
                    now - notified >= timedelta(hours=self.cfg.repeat_hours):
                kind = "reminder"
            else:
                continue
            notice = self._tell(key, kind, p.summary)
            if notice.via:
                entry["notified_at"] = now.isoformat()
            notices.append(notice)
        for key in [k for k in told if k not in current]:
            entry = told.pop(key)
            if entry.get("notified_at"):
                notices.append(self._tell(key, "resolved", f"resolved: {entry.get('summary', key)}"))
        self._save(told)
        return notices

    # ------------------------------------------------------------------ telling
    def _tell(self, key: str, kind: str, summary: str) -> Notice:
        prefix = {"problem": "PROBLEM", "reminder": "STILL", "resolved": "OK"}[kind]
        text = f"gatewayd {self.node}: {prefix} {summary}"
        via = []
        if self._send_sms(text):
            via.append("sms")
        if self._send_email(kind, text):
            via.append("email")
        if via:
            log.warning("keeper told (%s): %s", "+".join(via), text)
        else:
            log.error("keeper could not tell anyone (no SMS device up, no e-mail): %s", text)
        return Notice(key, kind, text, tuple(via))

    def _sms_path_works(self) -> bool:
        return any(d["kind"] == ChannelKind.SMS and d["state"] == DeviceState.UP and not _out_of_credit(d)
                   for d in self._current_devices())

    def _send_sms(self, text: str) -> bool:
        if not self.sms_to or not self._sms_path_works():
            return False
        try:
            self.store.enqueue_system_sms(self.sms_to, text[:SMS_LIMIT], "en")
        except Exception as exc:   # the database may be what is broken: e-mail still goes
            log.error("keeper could not queue its SMS: %s", exc)
            return False
        return True

    def _send_email(self, kind: str, text: str) -> bool:
        c = self.cfg
        if not (c.email_to and c.smtp_host):
            return False
        msg = EmailMessage()
        msg["From"], msg["To"] = c.email_from, c.email_to
        msg["Subject"] = f"[gatewayd {self.node}] {kind}: {text.split(': ', 1)[-1][:120]}"
        msg.set_content(text + "\n\nThis message was sent by gatewayd's keeper check. "
                        "Details: gatewayd status, journalctl -u gatewayd.\n")
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
                if c.smtp_starttls:
                    smtp.starttls()
                if c.smtp_username:
                    smtp.login(c.smtp_username, c.smtp_password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("keeper could not e-mail %s through %s:%d: %s", c.email_to, c.smtp_host, c.smtp_port, exc)
            return False
        return True

    # ------------------------------------------------------------------ memory
    def _load(self) -> dict[str, Any]:
        return self.store.get_setting(self.state_key)

    def _save(self, told: dict[str, Any]) -> None:
        self.store.put_setting(self.state_key, told)


def _out_of_credit(device: dict[str, Any]) -> bool:
    detail = device.get("detail") or {}
    return bool(detail.get("out_of_credit")) or bool(_CREDIT.search(device.get("last_error") or ""))


CHECK_PERIOD = 30.0      # seconds between checks in the daemon


def run_keeper(keeper: Keeper, stop: threading.Event, period: float = CHECK_PERIOD) -> None:
    """Call keeper.check() every PERIOD seconds until STOP is set; a failing check is logged, not fatal."""
    while not stop.wait(period):
        try:
            keeper.check()
        except Exception:
            log.exception("keeper check failed; trying again in %.0f s", period)


def start_keeper(cfg: KeeperConfig, store: Store, node: str, stop: threading.Event,
                 period: float = CHECK_PERIOD, devices: tuple[str, ...] | None = None,
                 node_id: str | None = None) -> threading.Thread | None:
    """Start the keeper's own thread (e-mail may block for SMTP_TIMEOUT); None when no contact is set."""
    if not (cfg.sms_to or cfg.email_to):
        log.info("no [keeper] contact configured: problems are only logged")
        return None
    keeper = Keeper(cfg, store, node, devices=devices, node_id=node_id)
    t = threading.Thread(target=run_keeper, args=(keeper, stop, period), name="keeper", daemon=True)
    t.start()
    return t
