"""The keeper is told once when a device stays down, a SIM runs dry or the queue is stuck."""
from __future__ import annotations

import socketserver
import threading
from datetime import timedelta
from email import message_from_bytes

import pytest
from sqlalchemy import select

from gatewayd.channels.base import DeviceHealth, DeviceState
from gatewayd.config import KeeperConfig
from gatewayd.keeper import Keeper
from gatewayd.model import Message, utcnow
from gatewayd.store import AlertRequest

CONTACT = "+32470999888"

@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and, under make test, on PostgreSQL."""
    return any_store


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO" or verb == b"HELO":
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.server.mails.append(message_from_bytes(data))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.mails = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


def _cfg(smtp=None, **kw) -> KeeperConfig:
    mail = {"email_to": "keeper@example.be", "smtp_host": "127.0.0.1",
            "smtp_port": smtp.server_address[1]} if smtp else {}
    # No dispatcher runs in these tests, so the keeper's own SMS stays queued: the
    # queue check is kept out of the device tests by a long threshold.
    return KeeperConfig(**{"sms_to": CONTACT, "device_down_minutes": 5, "queue_stuck_minutes": 100_000,
                           "repeat_hours": 24, **mail, **kw})


def _device(store, name, state=DeviceState.UP, error="", **detail):
    store.record_device(name, "sms", "node", DeviceHealth(state, signal=15, last_error=error, detail=detail))


def _keeper_sms(store) -> list[str]:
    with store.engine.connect() as c:
        return list(c.scalars(select(Message.text).where(Message.alert_id.is_(None), Message.number == CONTACT)))


def _ticks(keeper, start, minutes, every=timedelta(seconds=30)):
    """Run check() every EVERY for MINUTES from START, like the daemon does; return all notices."""
    notices, now = [], start
    while now <= start + timedelta(minutes=minutes):
        notices += keeper.check(now)
        now += every
    return notices


def test_device_down_is_told_once_however_often_checked(store):
    _device(store, "modem1")
    _device(store, "modem2", DeviceState.DOWN, "port vanished")
    notices = _ticks(Keeper(_cfg(), store, "box"), utcnow(), minutes=60)
    assert [(n.key, n.kind) for n in notices] == [("device-down:modem2", "problem")]


def test_device_down_goes_by_sms_through_a_working_modem(store):
    _device(store, "modem1")
    _device(store, "modem2", DeviceState.DOWN, "port vanished")
    _ticks(Keeper(_cfg(), store, "box"), utcnow(), minutes=60)
    assert _keeper_sms(store) == ["gatewayd box: PROBLEM device modem2 is down: port vanished"]


def test_short_outage_is_not_told(store):
    _device(store, "modem1", DeviceState.DOWN)
    keeper = Keeper(_cfg(), store, "box")
    start = utcnow()
    assert _ticks(keeper, start, minutes=4) == []
    _device(store, "modem1")
    assert _ticks(keeper, start + timedelta(minutes=5), minutes=30) == []


def test_device_down_goes_by_email_when_no_sms_device_works(store, smtp):
    _device(store, "modem1", DeviceState.DOWN, "no SIM")
    notices = _ticks(Keeper(_cfg(smtp), store, "box"), utcnow(), minutes=30)
    assert [n.via for n in notices] == [("email",)]
    assert len(smtp.mails) == 1 and "modem1 is down: no SIM" in smtp.mails[0].get_payload()
    assert _keeper_sms(store) == []


def test_recovery_is_told_once(store, smtp):
    _device(store, "modem1")
    _device(store, "modem2", DeviceState.DOWN)
    keeper = Keeper(_cfg(smtp), store, "box")
    start = utcnow()
    _ticks(keeper, start, minutes=10)
    _device(store, "modem2")
    notices = _ticks(keeper, start + timedelta(minutes=11), minutes=30)
    assert [(n.key, n.kind) for n in notices] == [("device-down:modem2", "resolved")]


def test_lasting_problem_is_reminded_after_repeat_hours(store):
    _device(store, "modem1")
    _device(store, "modem2", DeviceState.DOWN)
    notices = _ticks(Keeper(_cfg(), store, "box"), utcnow(), minutes=26 * 60, every=timedelta(minutes=10))
    assert [n.kind for n in notices] == ["problem", "reminder"]


def test_a_restart_does_not_repeat_what_was_told(store):
    _device(store, "modem1")
    _device(store, "modem2", DeviceState.DOWN)
    start = utcnow()
    _ticks(Keeper(_cfg(), store, "box"), start, minutes=10)
    assert _ticks(Keeper(_cfg(), store, "box"), start + timedelta(minutes=11), minutes=10) == []


def test_sim_out_of_credit_is_told_at_once_by_email_not_through_that_sim(store, smtp):
    _device(store, "modem1", out_of_credit=True)
    notices = Keeper(_cfg(smtp), store, "box").check(utcnow())
    assert [(n.key, n.via) for n in notices] == [("no-credit:modem1", ("email",))]


def test_credit_in_the_last_error_counts_too(store):
    _device(store, "modem1", error="+CMS ERROR: insufficient credit")
    _device(store, "modem2")
    assert [n.key for n in Keeper(_cfg(), store, "box").check(utcnow())] == ["no-credit:modem1"]


def test_notice_no_path_took_is_tried_again(store, smtp):
    _device(store, "modem1", DeviceState.DOWN)
    keeper = Keeper(_cfg(), store, "box")   # SMS only, and no SMS device is up
    start = utcnow()
    assert keeper.check(start) == []
    assert [n.via for n in keeper.check(start + timedelta(minutes=6))] == [()]
    _device(store, "modem2")
    assert [n.via for n in keeper.check(start + timedelta(minutes=7))] == [("sms",)]


@pytest.fixture
def waiting(store):
    """An urgent alert queued, never attempted; a working modem."""
    _device(store, "modem1")
    store.add_network("N")
    store.add_member("N", "+32470000001")
    store.enqueue_alert(AlertRequest(networks=("N",), category="urgent", text="x"))
    return store


def test_stuck_queue_is_told_once(waiting):
    notices = _ticks(Keeper(_cfg(queue_stuck_minutes=15), waiting, "box"), utcnow(), minutes=60)
    assert [(n.key, n.kind) for n in notices] == [("queue-stuck", "problem")]


def test_young_queue_is_not_stuck(waiting):
    assert Keeper(_cfg(queue_stuck_minutes=15), waiting, "box").check(utcnow() + timedelta(minutes=14)) == []


def test_prevention_held_by_quiet_hours_is_not_stuck(store):
    _device(store, "modem1")
    store.add_network("N")
    store.add_member("N", "+32470000001")
    store.enqueue_alert(AlertRequest(networks=("N",), category="prevention", text="x"))
    keeper = Keeper(_cfg(queue_stuck_minutes=15), store, "box", in_quiet_hours=lambda now: True)
    assert keeper.check(utcnow() + timedelta(hours=3)) == []


def test_keeper_thread_tells_once_while_running(store, smtp):
    import time

    from gatewayd.keeper import start_keeper
    _device(store, "modem1", DeviceState.DOWN, "no SIM")
    stop = threading.Event()
    thread = start_keeper(_cfg(smtp, device_down_minutes=0), store, "box", stop, period=0.05)
    try:
        deadline = time.monotonic() + 20
        while not smtp.mails and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)   # about 20 more checks
    finally:
        stop.set()
        thread.join(10)
    assert len(smtp.mails) == 1


def test_no_keeper_thread_without_a_contact(store):
    from gatewayd.keeper import start_keeper
    assert start_keeper(KeeperConfig(), store, "box", threading.Event()) is None


def test_devices_no_longer_run_are_not_watched(store):
    _device(store, "old-modem", DeviceState.DOWN)
    _device(store, "modem1")
    assert _ticks(Keeper(_cfg(), store, "box", devices=("modem1",)), utcnow(), minutes=30) == []
