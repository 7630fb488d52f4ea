"""Backup and restore: refusals say what is wrong and leave the database untouched."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gatewayd.backup import BackupError, DaemonRunning, acquire_daemon_lock, backup, restore, sqlite_path


@pytest.fixture
def db(sqlite_url) -> Path:
    path = sqlite_path(sqlite_url)
    with sqlite3.connect(path) as c:
        c.execute("INSERT INTO network (name, zone, created_at) VALUES ('BIN Noord', '', '2026-01-01 00:00:00')")
    return path


def _networks(path: Path) -> list[str]:
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT name FROM network ORDER BY id")]


def test_backup_then_restore_brings_back_the_old_contents(sqlite_url, db, tmp_path):
    backup(sqlite_url, tmp_path / "b.db")
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO network (name, zone, created_at) VALUES ('later', '', '2026-01-02 00:00:00')")
    info = restore(sqlite_url, tmp_path / "b.db")
    assert _networks(db) == ["BIN Noord"]
    assert _networks(info.previous) == ["BIN Noord", "later"]


def test_backup_file_is_private(sqlite_url, db, tmp_path):
    """0640: the gatewayd user and group, like the database itself; nothing for other users."""
    info = backup(sqlite_url, tmp_path / "b.db")
    assert info.path.stat().st_mode & 0o777 == 0o640


def test_backup_into_a_missing_directory_is_refused(sqlite_url, db, tmp_path):
    with pytest.raises(BackupError, match="does not exist"):
        backup(sqlite_url, tmp_path / "nope" / "b.db")


def test_backup_over_the_database_itself_is_refused(sqlite_url, db):
    with pytest.raises(BackupError, match="the database itself"):
        backup(sqlite_url, db)


def test_postgresql_is_pointed_to_its_own_tools():
    with pytest.raises(BackupError, match="pg_dump"):
        backup("postgresql+psycopg://u:p@localhost/gw", "/tmp/x.db")


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_restore_of_a_non_database_is_refused_and_changes_nothing(sqlite_url, db, tmp_path, content):
    bad = tmp_path / "bad.db"
    bad.write_bytes(content)
    with pytest.raises(BackupError):
        restore(sqlite_url, bad)
    assert _networks(db) == ["BIN Noord"]


def test_restore_of_a_foreign_sqlite_database_is_refused(sqlite_url, db, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE message (id INTEGER)")
    with pytest.raises(BackupError, match="schema none"):
        restore(sqlite_url, other)
    assert _networks(db) == ["BIN Noord"]


def test_restore_is_refused_while_the_daemon_lock_is_held(sqlite_url, db, tmp_path):
    backup(sqlite_url, tmp_path / "b.db")
    with acquire_daemon_lock(sqlite_url):
        with pytest.raises(DaemonRunning, match="stop it first"):
            restore(sqlite_url, tmp_path / "b.db")


def test_daemon_lock_is_free_again_after_release(sqlite_url, db):
    lock = acquire_daemon_lock(sqlite_url)
    lock.release()
    acquire_daemon_lock(sqlite_url).release()


def test_daemon_lock_goes_with_its_holder(sqlite_url, db):
    def run_once():
        lock = acquire_daemon_lock(sqlite_url)  # noqa: F841  held like cmd_run holds it
    run_once()
    acquire_daemon_lock(sqlite_url).release()


def test_second_daemon_lock_is_refused(sqlite_url, db):
    with acquire_daemon_lock(sqlite_url):
        with pytest.raises(DaemonRunning):
            acquire_daemon_lock(sqlite_url)
