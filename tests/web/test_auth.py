"""Login, logout, throttling, session cookie, login required, CSRF."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gatewayd.model import AuditAction, AuditEntry

from .conftest import PASSWORD, make_cfg

ALL_ROUTES_GET = ["/", "/alerts", "/alerts/new", "/alerts/1", "/alerts/1/status.json", "/members", "/members/new",
                  "/members/1", "/members/import", "/networks", "/networks/new", "/networks/1", "/inbox",
                  "/devices", "/devices.json", "/audit", "/admin/users", "/admin/users/new", "/admin/users/1",
                  "/admin/templates", "/admin/templates/1", "/admin/tokens"]
ALL_ROUTES_POST = ["/logout", "/alerts/preview", "/alerts/confirm", "/alerts/send", "/alerts/1/cancel",
                   "/alerts/1/approve", "/members/new", "/members/1", "/members/1/active", "/members/import",
                   "/networks/new",
                   "/inbox/1/handled", "/admin/users/new", "/admin/templates/1", "/admin/tokens",
                   "/admin/tokens/1/revoke"]


def login_token(client) -> str:
    html = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def do_login(client, username="agent", password=PASSWORD):
    return client.post("/login", data={"csrf_token": login_token(client), "username": username,
                                       "password": password})


def actions(store, action):
    with store.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize("path", ALL_ROUTES_GET)
def test_every_page_requires_login(client, path):
    resp = client.get(path)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


@pytest.mark.parametrize("path", ALL_ROUTES_POST)
def test_every_post_without_csrf_token_is_refused(police, path):
    assert police.post(path, data={"x": "1"}).status_code == 400


def test_login_with_right_password_opens_start_page(client):
    resp = do_login(client)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_login_with_wrong_password_is_refused(client):
    assert do_login(client, password="wrong-password").status_code == 401


def test_login_is_audited(client, world):
    do_login(client)
    assert [e.actor for e in actions(world, AuditAction.LOGIN)] == ["agent"]


def test_failed_login_is_audited(client, world):
    do_login(client, password="nope-nope-nope")
    assert actions(world, AuditAction.LOGIN_FAILED)[0].detail["username"] == "agent"


def test_five_failures_lock_even_the_right_password(client):
    for _ in range(5):
        do_login(client, password="wrong-password")
    assert do_login(client).status_code == 401


def test_lock_is_audited(client, world):
    for _ in range(6):
        do_login(client, password="wrong-password")
    assert len(actions(world, AuditAction.LOGIN_REFUSED_LOCKED)) == 1


def test_lock_is_per_username(client):
    for _ in range(5):
        do_login(client, password="wrong-password")
    assert do_login(client, username="admin").status_code == 302


def test_login_without_csrf_token_is_refused(client):
    resp = client.post("/login", data={"username": "agent", "password": PASSWORD})
    assert resp.status_code == 400


def test_login_redirects_only_to_local_paths(client):
    resp = client.post("/login?next=//evil.example/x", data={"csrf_token": login_token(client),
                                                              "username": "agent", "password": PASSWORD})
    assert resp.headers["Location"] == "/"


def test_logout_ends_the_session(client):
    do_login(client)
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_lax(client):
    resp = do_login(client)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_session_cookie_secure_when_configured(tmp_path, template_db, world):
    import shutil

    from web import create_app
    db = tmp_path / "s.db"
    shutil.copy(template_db, db)
    app = create_app(make_cfg(db, secure_cookies=True), world)
    client = app.test_client()
    resp = do_login(client)
    assert "Secure" in resp.headers["Set-Cookie"]


def test_deactivated_user_is_logged_out(police, world):
    from gatewayd.model import User
    with world.session.begin() as s:
        s.scalar(select(User).where(User.username == "agent")).active = False
    assert police.get("/").status_code == 302


def test_language_switch_changes_page_language(client):
    token = login_token(client)
    client.post("/language", data={"csrf_token": token, "lang": "fr", "next": "/login"})
    assert 'lang="fr"' in client.get("/login").get_data(as_text=True)


def test_default_language_is_dutch(tmp_path, template_db, world):
    import shutil

    from gatewayd.config import parse_config
    from web import create_app
    db = tmp_path / "d.db"
    shutil.copy(template_db, db)
    cfg = parse_config({"database": {"url": f"sqlite:///{db}"}, "web": {"secret_key": "x"}})
    html = create_app(cfg, world).test_client().get("/login").get_data(as_text=True)
    assert 'lang="nl"' in html and "Aanmelden" in html


def test_french_page_is_translated(client):
    token = login_token(client)
    client.post("/language", data={"csrf_token": token, "lang": "fr"})
    assert "Se connecter" in client.get("/login").get_data(as_text=True)


def test_pages_carry_a_content_security_policy(client):
    assert "script-src 'self'" in client.get("/login").headers["Content-Security-Policy"]
