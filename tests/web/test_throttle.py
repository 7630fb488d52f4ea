"""Login throttling: counted before the password is checked (no parallel overshoot), per account and
per address, audited, and a stranger's lock-out of an officer is bounded (issue 11)."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

from sqlalchemy import select

from gatewayd.model import AuditAction, AuditEntry, utcnow
from gatewayd.store import throttle

from .conftest import PASSWORD


def client_from(app, ip: str):
    """A browser at address IP (what the server sees as the peer, or a trusted proxy names)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def attempt(client, username="agent", password="wrong-password"):
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password})


def audited(store, action):
    with store.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction(action).value)))


def test_thirty_parallel_wrong_logins_check_at_most_the_limit(app, world):
    clients = [client_from(app, "198.51.100.7") for _ in range(30)]
    for c in clients:                      # the login form (and its CSRF token) first, as a browser would
        c.get("/login")
    start = threading.Barrier(30)
    results = []

    def go(c):
        html = c.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        start.wait()
        results.append(c.post("/login", data={"csrf_token": token, "username": "agent",
                                              "password": "wrong-password"}).status_code)

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [401] * 30
    checked = audited(world, AuditAction.LOGIN_FAILED)
    assert len(checked) <= throttle.ACCOUNT_ADDRESS.failures, len(checked)
    assert len(checked) + len(audited(world, AuditAction.LOGIN_REFUSED_LOCKED)) == 30


def test_one_address_guessing_many_accounts_is_locked_out(app, world):
    spray = client_from(app, "203.0.113.50")
    for i in range(throttle.ADDRESS.failures):
        attempt(spray, username=f"guess{i}")
    resp = attempt(spray, username="agent", password=PASSWORD)      # even a right password: not checked
    assert resp.status_code == 401
    assert attempt(client_from(app, "203.0.113.51"), password=PASSWORD).status_code == 302
    scopes = {e.detail["scope"] for e in audited(world, AuditAction.LOGIN_LOCKED)}
    assert "address" in scopes


def lock_account_from_many_places(app):
    """A stranger, from four addresses, spends the account-wide failure budget of 'agent'."""
    for n in range(throttle.ACCOUNT.failures // throttle.ACCOUNT_ADDRESS.failures):
        stranger = client_from(app, f"192.0.2.{10 + n}")
        for _ in range(throttle.ACCOUNT_ADDRESS.failures):
            attempt(stranger)


def test_many_places_guessing_one_account_lock_it_for_new_places(app, world):
    lock_account_from_many_places(app)
    assert attempt(client_from(app, "192.0.2.99"), password=PASSWORD).status_code == 401
    lock = [e for e in audited(world, AuditAction.LOGIN_LOCKED) if e.detail["scope"] == "account"]
    assert len(lock) == 1 and lock[0].detail["username"] == "agent"


def test_a_stranger_cannot_lock_an_officer_out_of_their_own_desk(app, world):
    desk = client_from(app, "10.20.30.40")
    assert attempt(desk, password=PASSWORD).status_code == 302      # the officer's usual place
    desk.post("/logout", data={"csrf_token": re.search(r'content="([^"]+)"', desk.get("/").get_data(
        as_text=True)).group(1)})
    lock_account_from_many_places(app)
    assert attempt(client_from(app, "10.20.30.40"), password=PASSWORD).status_code == 302


def test_a_lock_is_bounded_in_time(app, world):
    lock_account_from_many_places(app)
    for entry in audited(world, AuditAction.LOGIN_LOCKED):
        from datetime import datetime
        until = datetime.fromisoformat(entry.detail["until"])
        assert until <= utcnow() + max(throttle.ACCOUNT.lock, throttle.ACCOUNT_ADDRESS.lock) + timedelta(seconds=5)


def test_a_right_password_clears_the_accounts_count(app, world):
    here = client_from(app, "10.1.1.1")
    for _ in range(throttle.ACCOUNT_ADDRESS.failures - 1):
        attempt(here)
    assert attempt(here, password=PASSWORD).status_code == 302
    other = client_from(app, "10.1.1.1")
    for _ in range(throttle.ACCOUNT_ADDRESS.failures - 1):
        attempt(other)
    assert attempt(other, password=PASSWORD).status_code == 302


def test_stale_counters_are_forgotten_at_the_next_good_login(app, world):
    from gatewayd.model import LoginThrottle
    old = utcnow() - timedelta(days=2)
    with world.session.begin() as s:
        s.add(LoginThrottle(key="ua:nobody|192.0.2.1", failures=3, updated_at=old))
        s.add(LoginThrottle(key="u:locked", failures=0, locked_until=utcnow() + timedelta(minutes=3), updated_at=old))
    assert attempt(client_from(app, "10.2.2.2"), password=PASSWORD).status_code == 302
    with world.session() as s:
        keys = set(s.scalars(select(LoginThrottle.key)))
    assert "ua:nobody|192.0.2.1" not in keys and "u:locked" in keys and "k:agent|10.2.2.2" in keys
