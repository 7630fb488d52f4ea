"""Sessions end when they should: logout, password, role, deactivation, "log out everywhere",
and an absolute lifetime on top of the idle one (issue 11, point 3)."""
from __future__ import annotations

import shutil
import time

import pytest
from sqlalchemy import select

from gatewayd.model import AuditAction, AuditEntry, User
from web import create_app

from .conftest import csrf_token, login_as, make_cfg, user_id
from .test_auth import do_login

COOKIE = "gatewayd_session"


def logged_in(app, username="agent"):
    client = app.test_client()
    assert do_login(client, username=username).status_code == 302
    return client


def cookie_of(client) -> str:
    return client.get_cookie(COOKIE).value


def replay(app, cookie: str):
    """A fresh browser presenting a session cookie kept from before."""
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    return other.get("/")


def test_a_cookie_kept_from_before_logout_is_dead(app):
    client = logged_in(app)
    kept = cookie_of(client)
    assert replay(app, kept).status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    resp = replay(app, kept)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_logout_ends_the_users_other_sessions_too(app):
    phone, desk = logged_in(app), logged_in(app)
    desk.post("/logout", data={"csrf_token": csrf_token(desk)})
    assert phone.get("/").status_code == 302


def admin_edits(app, world, username, **changes):
    admin = login_as(app.test_client(), world, "admin")
    with world.session() as s:
        u = s.scalar(select(User).where(User.username == username))
        data = {"role": u.role, "zone": u.zone, "password": "", "active": "1", "networks": []}
    data.update(changes)
    data["csrf_token"] = csrf_token(admin)
    resp = admin.post(f"/admin/users/{user_id(world, username)}", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)


# (changes an admin makes, in order; does the cookie from before still work?)
ADMIN_CHANGES = [
    ([{"password": "a-brand-new-password"}], 302),
    ([{"role": "coordinator"}], 302),
    ([{"active": "0"}, {"active": "1"}], 302),          # reactivated: the old cookie stays dead
    ([{"zone": "Zone Zuid"}], 200),                     # scope is read per request: no need to log out
]


@pytest.mark.parametrize(("changes", "status"), ADMIN_CHANGES)
def test_admin_changes_end_the_old_sessions(app, world, changes, status):
    kept = cookie_of(logged_in(app))
    for change in changes:
        admin_edits(app, world, "agent", **change)
    assert replay(app, kept).status_code == status


def test_admin_changing_their_own_password_stays_logged_in_here(app, world):
    admin = logged_in(app, "admin")
    elsewhere = cookie_of(logged_in(app, "admin"))
    resp = admin.post(f"/admin/users/{user_id(world, 'admin')}", data={
        "csrf_token": csrf_token(admin), "role": "admin", "zone": "", "password": "another-long-password",
        "active": "1"})
    assert resp.status_code == 302
    assert admin.get("/").status_code == 200
    assert replay(app, elsewhere).status_code == 302


def test_admin_logs_a_user_out_everywhere(app, world):
    kept = cookie_of(logged_in(app))
    admin = logged_in(app, "admin")
    page = admin.get(f"/admin/users/{user_id(world, 'agent')}").get_data(as_text=True)
    assert 'id="logout-everywhere"' in page
    resp = admin.post(f"/admin/users/{user_id(world, 'agent')}/logout", data={"csrf_token": csrf_token(admin)})
    assert resp.status_code == 302
    assert replay(app, kept).status_code == 302
    with world.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == AuditAction.USER_LOGOUT_EVERYWHERE.value))
    assert entry.actor == "admin" and entry.detail["user"] == "agent"


def test_only_admins_log_others_out(app, world):
    coord = logged_in(app, "coord")
    resp = coord.post(f"/admin/users/{user_id(world, 'agent')}/logout", data={"csrf_token": csrf_token(coord)})
    assert resp.status_code == 403


def test_a_session_ends_at_its_absolute_lifetime_even_when_used(tmp_path, template_db, world):
    db = tmp_path / "short.db"
    shutil.copy(template_db, db)
    app = create_app(make_cfg(db, session_hours=3 / 3600), world)      # 3 seconds
    client = logged_in(app)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:        # used all along: the idle limit never strikes
        assert client.get("/").status_code == 200
        time.sleep(0.3)
    time.sleep(1.5)
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_session_without_its_login_time_is_refused(app, world):
    client = app.test_client()
    with client.session_transaction() as sess:     # a cookie of the old format: user id only
        sess["user_id"] = user_id(world, "agent")
    assert client.get("/").status_code == 302


def test_idle_limit_is_the_configured_one(tmp_path, template_db, world):
    db = tmp_path / "idle.db"
    shutil.copy(template_db, db)
    app = create_app(make_cfg(db, session_idle_minutes=30), world)
    assert app.permanent_session_lifetime.total_seconds() == 30 * 60
