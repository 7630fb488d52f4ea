"""The private parts of asterisk-ami that gatewayd.channels.voice builds on, checked against the library.

voice.py's AMI client subclasses asterisk.ami.AMIClient: it opens the socket itself, runs the
library's reader (`listen`) on it, replaces `send`, reads the greeting's version and sets each
answer's wait. Those are private names: pyproject pins asterisk-ami to the version they were
read from, and this test fails, naming what moved, the day an upgrade changes them.
"""
from __future__ import annotations

import socket
import threading
from importlib.metadata import version

from asterisk.ami import Action, AMIClient
from asterisk.ami.client import FutureResponse

PINNED = "0.1.7"


def test_the_installed_library_is_the_pinned_version():
    assert version("asterisk-ami") == PINNED, (
        f"asterisk-ami {version('asterisk-ami')} is installed, voice.py was written against {PINNED}: "
        "re-read its AMIClient (connect, listen, send, send_action, FutureResponse) before moving the pin")


def test_the_client_keeps_its_connection_state_in_the_attributes_voice_uses():
    c = AMIClient(address="192.0.2.1", port=5039, timeout=1.5)
    missing = {"_address", "_port", "_socket", "_thread", "finished", "_ami_version", "encoding"} - set(vars(c))
    assert not missing, f"AMIClient no longer sets {sorted(missing)}"
    assert (c._address, c._port, c._socket, c._thread, c.finished, c._ami_version) == (
        "192.0.2.1", 5039, None, None, None, None)


class _Recording(AMIClient):
    def __init__(self) -> None:
        super().__init__(timeout=0.2)
        self.sent: list[str] = []

    def send(self, pack) -> None:      # voice.py replaces send() the same way (a locked sendall)
        self.sent.append(str(pack))


def test_send_action_writes_through_send_and_waits_on_future_timeout():
    c = _Recording()
    future = c.send_action(Action("Ping", {"ActionID": "gwd-1"}))
    assert c.sent and "Action: Ping" in c.sent[0] and "ActionID: gwd-1" in c.sent[0]
    assert isinstance(future, FutureResponse) and future._timeout == 0.2
    future._timeout = 0.05            # voice.py sets each action's own wait here
    assert future.response is None    # no answer: the wait ends after _timeout


def test_listen_reads_the_greeting_and_events_from_the_socket_it_is_given():
    ours, theirs = socket.socketpair()
    c = AMIClient()
    events, down = [], threading.Event()
    c.add_event_listener(lambda event, **_kw: events.append(event))
    c.add_listener(on_disconnect=lambda *a, **kw: down.set())
    c._socket, c.finished = ours, threading.Event()   # what voice.py's connect() does
    reader = threading.Thread(target=c.listen, daemon=True)
    reader.start()
    theirs.sendall(b"Asterisk Call Manager/9.9.9\r\n")
    theirs.sendall(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
    for _ in range(200):
        if events:
            break
        threading.Event().wait(0.01)
    assert c._ami_version == "9.9.9"
    assert events and events[0].name == "FullyBooted"
    theirs.close()
    assert down.wait(5), "the reader did not report the closed socket as a disconnect"
    reader.join(5)
