"""The HTTP endpoint Asterisk fetches rendered audio from: only opaque names, no traversal."""
from __future__ import annotations

import http.client

import pytest

from gatewayd.audio import AudioServer

NAME = "0123456789abcdef0123456789abcdef.wav"


@pytest.fixture
def server(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / NAME).write_bytes(b"RIFF-audio")
    (tmp_path / "secret.txt").write_text("not for asterisk")
    (cache / "notes.wav").write_text("not rendered")
    srv = AudioServer(cache, "127.0.0.1:0")
    srv.start()
    yield srv
    srv.stop()


def get(srv: AudioServer, path: str, method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request(method, path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def test_rendered_file_is_served(server):
    assert get(server, f"/audio/{NAME}") == (200, b"RIFF-audio")


def test_head_answers_without_body(server):
    assert get(server, f"/audio/{NAME}", "HEAD") == (200, b"")


@pytest.mark.parametrize("path", [
    "/audio/../secret.txt",
    "/audio/%2e%2e/secret.txt",
    "/audio/..%2fsecret.txt",
    "/audio//etc/passwd",
    "/audio/notes.wav",
    f"/audio/{NAME}/../../secret.txt",
    "/secret.txt",
    "/audio/",
    "/",
])
def test_anything_but_an_opaque_name_is_404(server, path):
    assert get(server, path)[0] == 404


def test_unknown_opaque_name_is_404(server):
    assert get(server, "/audio/ffffffffffffffffffffffffffffffff.wav")[0] == 404


def test_url_uses_template_when_configured(server):
    assert server.url(NAME, "http://10.0.0.2:8090/a/{file}") == f"http://10.0.0.2:8090/a/{NAME}"


def test_url_defaults_to_this_server(server):
    assert server.url(NAME) == f"http://127.0.0.1:{server.port}/audio/{NAME}"
