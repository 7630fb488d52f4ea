"""Login throttling: counted before the password is checked, so parallel guesses cannot overshoot.

Three counters, each a LoginThrottle row, each taken with one conditional UPDATE
(atomic on SQLite and PostgreSQL alike):

- account at address ("ua:"): a few failures lock that account from that address;
- address ("a:"): many failures from one address, whatever the usernames, lock the address;
- account ("u:"): many failures from everywhere lock the account, but never from an
  address the user has logged in from before ("k:" rows). So a stranger can lock an
  officer out only of new places, and only for LOCK time at a go: the lock-out is bounded.

An attempt is counted as a failure when it starts and given back when the password was right.
Part of the store (the only data layer); the login page calls these three functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from ..model import LoginThrottle, utcnow
from .base import StoreBase as Store


@dataclass(frozen=True)
class Limit:
    scope: str           # what the lock is on: account_address | address | account
    prefix: str
    failures: int        # failures that place the lock
    lock: timedelta


ACCOUNT_ADDRESS = Limit("account_address", "ua:", 5, timedelta(minutes=5))
ADDRESS = Limit("address", "a:", 20, timedelta(minutes=15))
ACCOUNT = Limit("account", "u:", 20, timedelta(minutes=5))
KNOWN_FOR = timedelta(days=90)     # an address the user logged in from stays exempt this long
STALE_AFTER = timedelta(days=1)    # failure counters older than this are forgotten


@dataclass(frozen=True)
class Refusal:
    scope: str
    until: datetime


def _keys(username: str, ip: str) -> dict[Limit, str]:
    name = username.lower()[:80]
    return {ACCOUNT_ADDRESS: f"ua:{name}|{ip}", ADDRESS: f"a:{ip}", ACCOUNT: f"u:{name}"}


def _known_key(username: str, ip: str) -> str:
    return f"k:{username.lower()[:80]}|{ip}"


def _insert_missing(c: Connection, key: str, now: datetime) -> None:
    from sqlalchemy.dialects import postgresql, sqlite
    insert = postgresql.insert(LoginThrottle) if c.dialect.name == "postgresql" else sqlite.insert(LoginThrottle)
    c.execute(insert.values(key=key, failures=0, locked_until=None, updated_at=now)
              .on_conflict_do_nothing(index_elements=["key"]))


def _is_known(c: Connection, username: str, ip: str, now: datetime) -> bool:
    seen = c.scalar(select(LoginThrottle.updated_at).where(LoginThrottle.key == _known_key(username, ip)))
    return seen is not None and seen > now - KNOWN_FOR


def reserve(store: Store, username: str, ip: str) -> Refusal | None:
    """Count one attempt on every counter, or refuse (None = go ahead and check the password)."""
    now = utcnow()
    with store.engine.begin() as c:
        limits = [ACCOUNT_ADDRESS, ADDRESS] + ([] if _is_known(c, username, ip, now) else [ACCOUNT])
        keys = _keys(username, ip)
        taken: list[str] = []
        for limit in limits:
            key = keys[limit]
            _insert_missing(c, key, now)
            row = LoginThrottle
            took = c.execute(update(row).where(
                row.key == key, row.failures < limit.failures,
                (row.locked_until.is_(None)) | (row.locked_until <= now))
                .values(failures=row.failures + 1, updated_at=now)).rowcount
            if took:
                taken.append(key)
                continue
            for k in taken:          # this attempt is not checked: it counts nowhere
                c.execute(update(row).where(row.key == k).values(failures=row.failures - 1))
            return Refusal(limit.scope, _lock(c, key, limit, now))
    return None


def _lock(c: Connection, key: str, limit: Limit, now: datetime) -> datetime:
    """Lock KEY unless it is locked already; the end of its lock."""
    locked: datetime | None = c.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.key == key))
    if locked is not None and locked > now:
        return locked
    until = now + limit.lock
    # The count starts again once the lock is over.
    c.execute(update(LoginThrottle).where(LoginThrottle.key == key)
              .values(failures=0, locked_until=until, updated_at=now))
    return until


def failed(store: Store, username: str, ip: str) -> list[Refusal]:
    """After a wrong password: lock each counter that has reached its limit; the locks placed."""
    now = utcnow()
    placed = []
    with store.engine.begin() as c:
        keys = _keys(username, ip)
        for limit in (ACCOUNT_ADDRESS, ADDRESS, ACCOUNT):
            full = c.scalar(select(LoginThrottle.key).where(LoginThrottle.key == keys[limit],
                                                            LoginThrottle.failures >= limit.failures))
            if full is not None:
                placed.append(Refusal(limit.scope, _lock(c, keys[limit], limit, now)))
    return placed


def succeeded(store: Store, username: str, ip: str) -> None:
    """A right password: the account's counters start afresh; this address becomes a known one."""
    now = utcnow()
    keys = _keys(username, ip)
    with store.engine.begin() as c:
        c.execute(delete(LoginThrottle).where(LoginThrottle.key.in_((keys[ACCOUNT_ADDRESS], keys[ACCOUNT]))))
        # The address's own count only gives back this attempt: one good login must not
        # wipe out a spray of guesses at other accounts.
        c.execute(update(LoginThrottle).where(LoginThrottle.key == keys[ADDRESS], LoginThrottle.failures > 0)
                  .values(failures=LoginThrottle.failures - 1))
        known = _known_key(username, ip)
        _insert_missing(c, known, now)
        c.execute(update(LoginThrottle).where(LoginThrottle.key == known).values(updated_at=now))
        _forget_stale(c, now)


def _forget_stale(c: Connection, now: datetime) -> None:
    """Counters untouched for a day and not locked, known addresses not seen for KNOWN_FOR: gone,
    so a spray of made-up usernames does not grow the table for ever."""
    row = LoginThrottle
    c.execute(delete(row).where(~row.key.startswith("k:"), row.updated_at < now - STALE_AFTER,
                                (row.locked_until.is_(None)) | (row.locked_until <= now)))
    c.execute(delete(row).where(row.key.startswith("k:"), row.updated_at < now - KNOWN_FOR))
