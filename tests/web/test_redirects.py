"""After login and after a language switch the page goes only to its own paths (issue 11, point 4)."""
from __future__ import annotations

import pytest

from .conftest import PASSWORD
from .test_auth import login_token

FOREIGN = ["//evil.example/x", "/\t/evil.example", "/ /evil.example", "/\\evil.example", "\\\\evil.example",
           "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "/\x0b/evil.example",
           "/\u3000/evil.example", "evil.example", "/%09/evil.example"]


def login(client, next_value):
    return client.post("/login", query_string={"next": next_value},
                       data={"csrf_token": login_token(client), "username": "agent", "password": PASSWORD})


@pytest.mark.parametrize("target", FOREIGN)
def test_login_never_redirects_off_site(client, target):
    resp = login(client, target)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/" or (resp.headers["Location"] == target == "/%09/evil.example")


def test_the_issues_tab_example(client):
    resp = client.post("/login?next=/%09/evil.example",
                       data={"csrf_token": login_token(client), "username": "agent", "password": PASSWORD})
    assert resp.headers["Location"] == "/"


def test_a_local_path_with_a_query_is_kept(client):
    assert login(client, "/alerts/new?category=urgent").headers["Location"] == "/alerts/new?category=urgent"


@pytest.mark.parametrize("target", ["/alerts\r\nSet-Cookie: x=1", "/\n/evil.example", "/%0d%0a"])
def test_cr_lf_in_next_is_a_400_not_a_500(client, target):
    query = "next=" + target if target.startswith("/%") else None
    resp = (client.post(f"/login?{query}", data={"csrf_token": login_token(client), "username": "agent",
                                                  "password": PASSWORD})
            if query else login(client, target))
    assert resp.status_code == 400


def test_cr_lf_in_next_on_the_login_page_is_a_400(client):
    assert client.get("/login?next=/%0d%0aX:1").status_code == 400


@pytest.mark.parametrize("target", FOREIGN)
def test_language_switch_never_redirects_off_site(client, target):
    resp = client.post("/language", data={"csrf_token": login_token(client), "lang": "fr", "next": target})
    assert resp.status_code == 302 and resp.headers["Location"] in ("/", target if target == "/%09/evil.example"
                                                                     else "/")


def test_language_switch_cr_lf_is_a_400(client):
    resp = client.post("/language", data={"csrf_token": login_token(client), "lang": "fr",
                                          "next": "/login\r\nLocation: https://evil.example"})
    assert resp.status_code == 400


def test_language_switch_back_to_a_local_page(client):
    resp = client.post("/language", data={"csrf_token": login_token(client), "lang": "fr", "next": "/login"})
    assert resp.headers["Location"] == "/login"
