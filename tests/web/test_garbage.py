"""Garbage in any field or query parameter is answered with a page, never a traceback."""
from __future__ import annotations

import pytest

from .conftest import csrf_token, login_as

GARBAGE = ["", "abc", "-1", "0", "99999999999999999999", "<script>x</script>", "\x00", "ë" * 2000]
POSTS = ["/alerts/preview", "/alerts/confirm", "/alerts/send", "/alerts/new", "/alerts/1/cancel", "/alerts/1/approve",
         "/members/new",
         "/members/1", "/members/1/active", "/members/import", "/networks/new", "/networks/1", "/inbox/1/handled",
         "/admin/users/new", "/admin/users/1", "/admin/templates/1", "/admin/tokens", "/admin/tokens/1/revoke",
         "/language", "/login"]
FIELDS = ["networks", "category", "template", "channel", "text_nl", "text_fr", "text_de", "text_en", "parent_id",
          "confirm_token", "correct_id", "phone", "name", "lang", "opted_out", "active", "network", "text", "step",
          "skip_bad",
          "zone", "username", "password", "role", "title", "handled", "next", "drill"]
GETS = ["/alerts/99999999999999999999", "/?page={}", "/alerts/1?page={}&state={}", "/members?network={}&q={}&page={}",
        "/inbox?page={}&all={}", "/audit?page={}&actor={}&action={}",
        "/alerts/new?category={}&template={}&parent={}&drill={}", "/alerts/new?correct={}",
        "/members/import?network={}", "/members/new?network={}"]


@pytest.mark.parametrize("role", ["agent", "coord", "admin"])
@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_posts_never_crash(client, world, role, value):
    login_as(client, world, role)
    token = csrf_token(client)
    for path in POSTS:
        resp = client.post(path, data={"csrf_token": token, **{f: value for f in FIELDS}})
        assert resp.status_code < 500, path


@pytest.mark.parametrize("role", ["agent", "admin"])
@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_queries_never_crash(client, world, role, value):
    from urllib.parse import quote
    login_as(client, world, role)
    for pattern in GETS:
        path = pattern.format(*[quote(value)] * pattern.count("{}"))
        assert client.get(path).status_code < 500, path
