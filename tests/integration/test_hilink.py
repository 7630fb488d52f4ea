"""HiLink dongles as a channel (issue 12): huawei-lte-api as the client against an HTTP emulator
of the dongle's documented web API on loopback, session/token handshake included."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests

from gatewayd import sms
from gatewayd.channels.base import ChannelError, Delivery, DeliveryReport, DeviceState, InboundText, OutcomeKind
from gatewayd.channels.hilink import HilinkChannel
from gatewayd.config import HilinkConfig, SmsConfig
from tests.emulators.hilink import HilinkEmulator
from tests.fixtures.daemon import Gateway
from tests.fixtures.modem import Sink, wait_for

pytestmark = pytest.mark.timeout(90)

NUMBER = "+32470123456"


@pytest.fixture
def dongle():
    emu = HilinkEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def channel(dongle):
    opened = []

    def make(sms_cfg: SmsConfig | None = None, open_it: bool = True, sink=None, network_hold: float = 10.0,
             login_lock_wait: float = 60.0, **cfg):
        base = dict(name="dongle1", url=dongle.url, username="admin", password="geheim", poll_interval=0.2,
                    timeout=3.0, send_timeout=5.0)
        ch = HilinkChannel(HilinkConfig(**{**base, **cfg}), sms_cfg or SmsConfig(), network_hold=network_hold,
                           login_lock_wait=login_lock_wait)
        opened.append(ch)
        sink = sink if sink is not None else Sink()
        if open_it:
            ch.open(sink)
        return ch, sink

    yield make
    for ch in opened:
        ch.close()


def deliver(text: str, mid: int = 1, number: str = NUMBER, **kw) -> Delivery:
    return Delivery(message_id=mid, number=number, text=text, **kw)


# ---------------------------------------------------------------- session and token handshake

def test_the_emulator_refuses_a_post_without_a_token(dongle):
    s = requests.Session()
    s.get(dongle.url, timeout=5)
    r = s.post(dongle.url + "api/sms/send-sms", data=b"<request><Content>x</Content></request>", timeout=5)
    assert "<code>125002</code>" in r.text and dongle.sent == []


def test_channel_logs_in_through_the_handshake_and_sends(channel, dongle):
    ch, _ = channel()
    assert ch.health().state is DeviceState.UP and dongle.logins == 1
    assert ("GET", "/api/webserver/SesTokInfo") in dongle.calls and ("POST", "/api/user/login") in dongle.calls
    out = ch.send(deliver("Inbraak gemeld in de Kerkstraat"))
    assert out.kind is OutcomeKind.SENT and out.segments == 1
    assert [(t.number, t.text) for t in dongle.sent] == [(NUMBER, "Inbraak gemeld in de Kerkstraat")]


def test_wrong_password_is_named_and_not_retried(channel, dongle):
    ch, _ = channel(open_it=False, password="fout")
    with pytest.raises(ChannelError, match="refused the login"):
        ch.open(Sink())
    time.sleep(1.5)
    assert dongle.calls.count(("POST", "/api/user/login")) == 1 and "fout" not in ch.health().last_error


def test_a_rebooted_dongle_is_logged_into_again(channel, dongle):
    ch, _ = channel()
    dongle.expire_sessions()                   # the next look at the inbox finds the session gone
    wait_for(lambda: dongle.logins == 2 and ch.health().state is DeviceState.UP, 15, "logged in again")
    assert ch.send(deliver("twee", 2)).kind is OutcomeKind.SENT


def test_an_answer_that_is_not_xml_does_not_stop_the_channel(channel, dongle):
    """A dongle's web server answers an HTML error page while it restarts: the channel must
    treat that as the dongle gone (and come back), not lose its supervisor for good."""
    ch, sink = channel()
    looks = dongle.calls.count(("GET", "/api/monitoring/status"))
    dongle.garble("/api/monitoring/status", 1)
    wait_for(lambda: dongle.calls.count(("GET", "/api/monitoring/status")) > looks + 1, 10, "looked again")
    dongle.inject_sms(NUMBER, "JA")
    assert sink.wait(InboundText).text == "JA"
    wait_for(lambda: ch.health().state is DeviceState.UP, 10, "up again")
    assert ch.send(deliver("na de storing")).kind is OutcomeKind.SENT


def test_a_send_answered_with_html_is_not_a_traceback(channel, dongle):
    ch, _ = channel()
    dongle.garble("/api/sms/send-status", 1)
    out = ch.send(deliver("een"))
    assert out.kind is OutcomeKind.DEVICE_DOWN and out.maybe_sent and "stopped answering" in out.detail
    wait_for(lambda: ch.health().state is DeviceState.UP, 10, "up again")


def test_a_login_locked_by_someone_else_is_tried_again_after_a_wait(channel, dongle):
    """Someone mistyped the password at the dongle's web page and it locked its login (108007)
    just as the dongle rebooted. gatewayd's password is right: it waits, then logs in again,
    rather than giving up until a restart."""
    ch, _ = channel(login_lock_wait=1.0)
    dongle.lock_login(2.0)
    dongle.expire_sessions()
    wait_for(lambda: "locked" in ch.health().last_error, 10, "the lock reported")
    logins_tried = dongle.calls.count(("POST", "/api/user/login"))
    wait_for(lambda: dongle.logins == 2 and ch.health().state is DeviceState.UP, 20, "logged in after the lock")
    assert dongle.calls.count(("POST", "/api/user/login")) - logins_tried <= 4     # waited, did not hammer it
    assert ch.send(deliver("na het slot")).kind is OutcomeKind.SENT


def test_unreachable_dongle_is_down_with_a_hint(tmp_path):
    ch = HilinkChannel(HilinkConfig(name="d", url="http://127.0.0.1:9/", timeout=1.0), SmsConfig())
    try:
        with pytest.raises(ChannelError, match="does not answer.*192.168.8"):
            ch.open(Sink())
    finally:
        ch.close()


# ---------------------------------------------------------------- sending

def test_text_goes_out_as_the_preview_planned(channel, dongle):
    ch, _ = channel()
    text = "“Let op” – inbraak in de Stationsstraat. " * 4
    out = ch.send(deliver(text))
    plan = sms.plan(text, smart=True)
    assert out.segments == plan.segments and dongle.sent[0].text == plan.text_to_send
    assert dongle.sent[0].text_mode == "1"        # GSM 7-bit


def test_accents_kept_go_out_in_ucs2(channel, dongle):
    ch, _ = channel(SmsConfig(smart_encoding=False))
    ch.send(deliver("Inbraak in België"))
    assert (dongle.sent[0].text, dongle.sent[0].text_mode) == ("Inbraak in België", "0")


def test_failed_send_is_retried_later(channel, dongle):
    ch, _ = channel()
    dongle.fail_next_sends(1)
    assert ch.send(deliver("een")).kind is OutcomeKind.RETRY
    assert ch.send(deliver("een", 2)).kind is OutcomeKind.SENT


def test_repeated_send_failures_mark_the_dongle_down_for_the_network_until_the_hold_off(channel, dongle):
    ch, _ = channel(network_hold=0.5)
    dongle.set_service("1")                              # limited service: the network is in doubt
    wait_for(lambda: ch.health().registered is None, 10, "the dongle's service looked at")
    dongle.fail_next_sends(2)
    assert [ch.send(deliver("x", i)).kind for i in range(2)] == [OutcomeKind.RETRY, OutcomeKind.DEVICE_DOWN]
    assert ch.health().last_error.startswith("no network")
    wait_for(lambda: ch.health().state is DeviceState.UP, 10, "tried again after the hold-off")
    assert ch.send(deliver("y", 3)).kind is OutcomeKind.SENT


def test_failed_sends_while_in_service_do_not_take_the_dongle_off_the_network(channel, dongle):
    """send-status names no reason. While the dongle reports service available, a number the
    network refuses (tried twice in a row) is the recipient's trouble: the dongle stays up for
    everyone else, as an AT modem does on a bare ERROR while registered."""
    ch, _ = channel(network_hold=5.0)
    dongle.fail_next_sends(2)
    assert [ch.send(deliver("x", 1, number="+32470000001")).kind for _ in range(2)] == [OutcomeKind.RETRY] * 2
    assert ch.health().state is DeviceState.UP
    assert ch.send(deliver("y", 2)).kind is OutcomeKind.SENT


def test_a_send_the_dongle_answers_too_late_may_have_been_sent(channel, dongle):
    """The dongle took the text but answered send-sms after our timeout: that is not 'not sent'."""
    ch, _ = channel(timeout=1.0)
    dongle.delay_next("/api/sms/send-sms", 2.0)
    out = ch.send(deliver("een"))
    assert out.kind is OutcomeKind.DEVICE_DOWN and out.maybe_sent and len(dongle.sent) == 1


def test_a_busy_answer_while_asking_how_the_send_went_is_waited_out(channel, dongle):
    """The dongle took the text, then says 'system busy' (100004) to send-status while it sends:
    the text is out, so it must not be handed back for a second send."""
    ch, _ = channel()
    dongle.refuse("/api/sms/send-status", 100004, 113017)
    out = ch.send(deliver("een"))
    assert out.kind is OutcomeKind.SENT and len(dongle.sent) == 1


def test_a_refusal_after_the_dongle_took_the_text_may_have_been_sent(channel, dongle):
    ch, _ = channel()
    dongle.refuse("/api/sms/send-status", 100005)
    out = ch.send(deliver("een"))
    assert out.kind is not OutcomeKind.RETRY and out.maybe_sent and len(dongle.sent) == 1


def test_too_long_text_bad_number_and_drill_send_nothing(channel, dongle):
    ch, _ = channel(SmsConfig(max_segments=2))
    assert ch.send(deliver("y" * 400)).kind is OutcomeKind.FAILED
    assert ch.send(deliver("hallo", number="+32470<x/>")).kind is OutcomeKind.FAILED
    assert ch.send(deliver("oefening", drill=True)).detail == "drill"
    assert dongle.sent == []


# ---------------------------------------------------------------- delivery reports

def test_status_reports_are_asked_for_and_matched(channel, dongle):
    ch, sink = channel()
    assert dongle.use_s_report
    a = ch.send(deliver("een", 1))
    b = ch.send(deliver("twee", 2))
    dongle.deliver_report(NUMBER, delivered=True)
    dongle.deliver_report(NUMBER, delivered=False)
    wait_for(lambda: len(sink.of(DeliveryReport)) == 2, 10, "two reports")
    r1, r2 = sink.of(DeliveryReport)
    assert (r1.reference, r1.delivered, r2.reference, r2.delivered) == (a.reference, True, b.reference, False)
    wait_for(lambda: dongle.inbox == {}, 5, "reports deleted from the dongle")


def test_a_status_report_whose_delete_failed_does_not_take_the_next_reference(channel, dongle):
    ch, sink = channel()
    a = ch.send(deliver("een", 1))
    b = ch.send(deliver("twee", 2))
    dongle.fail_next_deletes(1)
    dongle.deliver_report(NUMBER, delivered=True)
    wait_for(lambda: dongle.inbox == {}, 10, "the first report deleted on a later look")
    dongle.deliver_report(NUMBER, delivered=False)
    wait_for(lambda: len(sink.of(DeliveryReport)) >= 2, 10, "two reports")
    time.sleep(0.5)
    assert [(r.reference, r.delivered) for r in sink.of(DeliveryReport)] == [(a.reference, True), (b.reference, False)]


def test_a_status_report_the_sink_could_not_store_keeps_its_reference(channel, dongle):
    """The store is briefly unavailable when a status report is read: it stays on the dongle and,
    read again, is matched to the same send, not to the next one."""
    failing = threading.Event()
    failing.set()

    class Flaky(Sink):
        def __call__(self, event):
            if isinstance(event, DeliveryReport) and failing.is_set():
                failing.clear()
                raise RuntimeError("database locked")
            super().__call__(event)

    ch, sink = channel(sink=Flaky())
    a = ch.send(deliver("een", 1))
    b = ch.send(deliver("twee", 2))
    dongle.deliver_report(NUMBER, delivered=True)
    wait_for(lambda: dongle.inbox == {}, 10, "stored on a later look, then deleted")
    dongle.deliver_report(NUMBER, delivered=False)
    wait_for(lambda: len(sink.of(DeliveryReport)) >= 2, 10, "two reports")
    assert [(r.reference, r.delivered) for r in sink.of(DeliveryReport)] == [(a.reference, True), (b.reference, False)]


# ---------------------------------------------------------------- replies, written ahead

def test_reply_is_read_then_deleted_after_the_sink_returned(channel, dongle):
    order: list[str] = []

    class Recording(Sink):
        def __call__(self, event):
            if isinstance(event, InboundText):
                order.append("stored")
            super().__call__(event)

    dongle.on_delete = lambda index: order.append("deleted")
    ch, sink = channel(sink=Recording())
    dongle.inject_sms(NUMBER, "STOP")
    msg = sink.wait(InboundText)
    assert (msg.device, msg.number, msg.text) == ("dongle1", NUMBER, "STOP")
    wait_for(lambda: dongle.inbox == {}, 5, "deleted")
    assert order == ["stored", "deleted"]


def test_reply_stays_on_the_dongle_while_it_cannot_be_stored(channel, dongle):
    failing = threading.Event()
    failing.set()

    class Flaky(Sink):
        def __call__(self, event):
            if isinstance(event, InboundText) and failing.is_set():
                raise RuntimeError("database locked")
            super().__call__(event)

    ch, sink = channel(sink=Flaky())
    index = dongle.inject_sms(NUMBER, "JA")
    time.sleep(1.0)                                      # several looks at the inbox
    assert index in dongle.inbox and not sink.of(InboundText)
    failing.clear()
    assert sink.wait(InboundText).text == "JA"
    wait_for(lambda: dongle.inbox == {}, 5, "deleted once stored")


def test_a_reply_whose_delete_failed_is_stored_once(channel, dongle):
    """The sink stored the reply, then the dongle refused the delete (busy): the next look
    finds it again. It is deleted then, not stored a second time, and sending goes on."""
    ch, sink = channel()
    dongle.fail_next_deletes(1)
    dongle.inject_sms(NUMBER, "JA")
    assert sink.wait(InboundText).text == "JA"
    wait_for(lambda: dongle.inbox == {}, 10, "deleted on a later look")
    time.sleep(0.5)                                      # more looks at the inbox
    assert [e.text for e in sink.of(InboundText)] == ["JA"]
    assert ch.health().state is DeviceState.UP and dongle.logins == 1
    assert ch.send(deliver("verder")).kind is OutcomeKind.SENT


# ---------------------------------------------------------------- health

def test_signal_and_registration_in_health(channel, dongle):
    ch, _ = channel()
    h = ch.health()
    assert (h.signal, h.registered, h.detail["network"], h.detail["operator"]) == (23, True, "registered", "Proximus")
    assert h.detail["registration"] == {"service": "service available", "technology": "LTE"}
    dongle.set_service("0")
    wait_for(lambda: ch.health().registered is False, 5, "no service shown")
    assert ch.health().state is DeviceState.UP          # evidence, not a gate: sends decide


# ---------------------------------------------------------------- the daemon, end to end

def test_daemon_sends_an_alert_through_the_dongle_and_takes_a_stop(tmp_path, dongle):
    toml = (f'[[hilink]]\nname = "dongle1"\nurl = "{dongle.url}"\npassword = "geheim"\nsms_per_minute = 600\n'
            f'poll_interval = 0.3\n')
    g = Gateway(tmp_path, toml)
    g.cli("init-db")
    g.cli("network", "add", "N")
    (tmp_path / "m.csv").write_text("name,phone,channel,lang\n" +
                                    "".join(f"m{i},+32470{i:06d},sms,nl\n" for i in range(3)))
    g.cli("member", "import", "--network", "N", str(tmp_path / "m.csv"))
    alert = int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "Inbraak gemeld").stdout)
    try:
        g.start()
        g.wait_for(lambda: g.status(alert)["messages"] == {"sent": 3})
        assert sorted((t.number, t.text) for t in dongle.sent) == [(f"+32470{i:06d}", "Inbraak gemeld")
                                                                  for i in range(3)]
        dongle.inject_sms("+32470000001", "STOP")

        def opted_out():
            con = sqlite3.connect(g.db)
            try:
                return con.execute("SELECT opted_out FROM member WHERE phone = '+32470000001'").fetchall() == [(1,)]
            finally:
                con.close()
        g.wait_for(opted_out)
        g.wait_for(lambda: dongle.inbox == {})
    finally:
        g.stop()


def test_doctor_logs_in_and_reports_the_dongle(dongle):
    from gatewayd.channels.hilink import doctor
    checks = {c.what: c for c in doctor(HilinkConfig(name="d", url=dongle.url, password="geheim"))}
    assert all(c.ok for c in checks.values())
    assert checks["hilink d network"].detail == "service available, LTE, operator Proximus"
    [bad] = doctor(HilinkConfig(name="d", url=dongle.url, password="fout"))
    assert not bad.ok and "refused the login" in bad.detail
