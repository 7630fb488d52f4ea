"""AMI safety of the voice channel, checked on the wire against a scripted AMI peer.

The peer is a real TCP server speaking the AMI framing (greeting, Login,
Originate, Ping); it records every packet gatewayd writes. Real-Asterisk
behaviour is covered in tests/integration/test_voice.py.
"""
from __future__ import annotations

import logging
import socket
import threading

import pytest

from gatewayd.channels.ami import AmiValueError, ami_value
from gatewayd.channels.base import ChannelError, Delivery, OutcomeKind
from gatewayd.channels.voice import VoiceChannel
from gatewayd.config import AsteriskConfig, TtsConfig

INJECTION = "\r\nAction: Originate\r\nChannel: Local/666@evil\r\n"
SECRET = "s3cr3t-Do-Not-Log-7f1c"


class FakeAmi:
    """Minimal AMI peer: accepts SECRET, answers Originate with a busy OriginateResponse."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.packets: list[str] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
        buf = b""
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                raw, buf = buf.split(b"\r\n\r\n", 1)
                self._answer(conn, raw.decode())

    def _answer(self, conn, pkt: str):
        self.packets.append(pkt)
        fields = dict(line.split(": ", 1) for line in pkt.split("\r\n") if ": " in line)
        aid = fields.get("ActionID", "")
        action = fields.get("Action", "")
        if action == "Login":
            ok = fields.get("Secret") == SECRET
            status = "Success\r\nMessage: Authentication accepted" if ok else "Error\r\nMessage: Authentication failed"
            conn.sendall(f"Response: {status}\r\nActionID: {aid}\r\n\r\n".encode())
        elif action == "Originate":
            conn.sendall(f"Response: Success\r\nActionID: {aid}\r\nMessage: Originate successfully queued\r\n\r\n"
                         f"Event: OriginateResponse\r\nActionID: {aid}\r\nResponse: Failure\r\nReason: 5\r\n"
                         f"Channel: Local/x\r\nUniqueid: <null>\r\n\r\n".encode())
        else:
            conn.sendall(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())

    def actions(self, name: str) -> list[str]:
        return [p for p in self.packets if p.startswith(f"Action: {name}\r\n")]

    def close(self):
        self._stop = True
        self.sock.close()


@pytest.fixture
def fake_ami():
    peer = FakeAmi()
    yield peer
    peer.close()


def make_channel(port: int, tmp_path, secret: str = SECRET, **kw) -> VoiceChannel:
    cfg = AsteriskConfig(host="127.0.0.1", port=port, username="gw", secret=secret,
                         channel="Local/{number}@bin-test", audio_listen="127.0.0.1:0", **kw)
    return VoiceChannel(cfg, TtsConfig(cache_dir=str(tmp_path / "audio"), header_nl="Test."))


@pytest.fixture
def channel(fake_ami, tmp_path):
    ch = make_channel(fake_ami.port, tmp_path)
    ch.open(lambda event: None)
    yield ch
    ch.close()


def test_ami_value_refuses_crlf():
    with pytest.raises(AmiValueError):
        ami_value("+32470000001" + INJECTION)


def test_ami_value_refuses_bare_lf():
    with pytest.raises(AmiValueError):
        ami_value("a\nb")


def test_ami_value_refuses_comma_in_variable():
    with pytest.raises(AmiValueError):
        ami_value("http://x/a,GATEWAYD_CALL=evil", variable=True)


def test_ami_value_passes_plain_text():
    assert ami_value("Local/+32470000001@bin-test") == "Local/+32470000001@bin-test"


@pytest.mark.timeout(60)
def test_number_with_crlf_is_failed_and_never_dialled(channel, fake_ami):
    out = channel.send(Delivery(1, "+32470000001" + INJECTION, "Hallo."))
    assert out.kind is OutcomeKind.FAILED and fake_ami.actions("Originate") == []


@pytest.mark.timeout(60)
def test_text_with_crlf_places_exactly_one_originate(channel, fake_ami):
    channel.send(Delivery(2, "+32470000002", "Hallo." + INJECTION))
    assert len(fake_ami.actions("Originate")) == 1


@pytest.mark.timeout(60)
def test_text_never_travels_over_ami(channel, fake_ami):
    channel.send(Delivery(3, "+32470000003", "Hallo." + INJECTION))
    assert not any("Local/666@evil" in p for p in fake_ami.packets)


@pytest.mark.timeout(60)
def test_originate_carries_one_header_per_line(channel, fake_ami):
    channel.send(Delivery(4, "+32470000004", "Hallo."))
    (pkt,) = fake_ami.actions("Originate")
    assert all(": " in line for line in pkt.split("\r\n"))


@pytest.mark.timeout(60)
def test_busy_from_peer_is_retry(channel):
    out = channel.send(Delivery(5, "+32470000005", "Hallo."))
    assert (out.kind, out.detail) == (OutcomeKind.RETRY, "busy")


@pytest.mark.timeout(60)
def test_drill_renders_but_places_no_call(channel, fake_ami):
    out = channel.send(Delivery(6, "+32470000006", "Hallo.", drill=True))
    assert out.kind is OutcomeKind.DELIVERED and "drill" in out.detail and fake_ami.actions("Originate") == []


@pytest.mark.timeout(60)
def test_wrong_secret_is_a_clear_channel_error(fake_ami, tmp_path):
    ch = make_channel(fake_ami.port, tmp_path, secret="wrong-" + SECRET)
    with pytest.raises(ChannelError, match="refused the AMI login"):
        ch.open(lambda event: None)


@pytest.mark.timeout(60)
def test_secret_never_reaches_the_log_or_the_error(fake_ami, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    bad = "wrong-" + SECRET
    ch = make_channel(fake_ami.port, tmp_path, secret=bad)
    with pytest.raises(ChannelError) as err:
        ch.open(lambda event: None)
    good = make_channel(fake_ami.port, tmp_path)
    good.open(lambda event: None)
    good.send(Delivery(7, "+32470000007", "Hallo."))
    good.close()
    assert SECRET not in caplog.text + str(err.value)


@pytest.mark.timeout(60)
def test_config_value_with_line_break_is_refused_at_open(fake_ami, tmp_path):
    ch = make_channel(fake_ami.port, tmp_path, context="bin-alert\r\nAction: Originate")
    with pytest.raises(ChannelError, match="line break"):
        ch.open(lambda event: None)


@pytest.mark.timeout(60)
def test_unreachable_ami_is_a_clear_channel_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ch = make_channel(port, tmp_path)
    with pytest.raises(ChannelError, match="cannot connect to Asterisk AMI"):
        ch.open(lambda event: None)
