"""Backup and restore of the SQLite database, safe while gatewayd runs.

Backup uses SQLite's online backup API in one step: it reads one consistent
snapshot (a read transaction; in WAL mode writers carry on) into a temporary
file, checks it with `PRAGMA integrity_check`, and only then renames it over
FILE. A backup is one self-contained file (rollback-journal mode, no -wal).

Restore refuses while the daemon runs. The daemon holds an advisory lock
(`flock`) on `<database>.lock` for its whole life (`acquire_daemon_lock`);
restore takes the same lock, so the two cannot overlap, and a second daemon on
the same database is refused too. The web page may keep running: restore
writes through SQLite (the backup API into the live database), never by
replacing the file under open connections, so every process sees either the
old or the new database, never a mix. The database as it was is kept as
`<database>.before-restore`.

PostgreSQL is backed up with its own tools (pg_dump / pg_restore).
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .errors import CannotWrite, GatewaydError

BUSY_TIMEOUT = 30.0   # seconds to wait for a writer's lock, as the daemon does


class BackupError(GatewaydError):
    """A backup or restore could not be done; the message says why and what to do."""


class DaemonRunning(BackupError):
    """`gatewayd run` holds the database lock."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int           # bytes
    messages: int       # rows in the message table, to tell backups apart


@dataclass(frozen=True)
class RestoreInfo:
    restored_from: Path
    previous: Path | None   # the database as it was, or None when there was none
    messages: int


def sqlite_path(url: str) -> Path:
    """The database file behind a SQLite URL; BackupError for any other database."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        raise BackupError(f"backup and restore work on SQLite; for {u.get_backend_name()} use its own tools "
                          "(pg_dump / pg_restore)")
    if not u.database or u.database == ":memory:":
        raise BackupError("[database].url names no database file")
    return Path(u.database)


# ---------------------------------------------------------------------- the daemon's lock
class DaemonLock:
    """An exclusive flock on `<database>.lock`, released when the process ends or on release()."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        # cmd_run keeps the lock in a local: when it returns, the lock goes (tests run it in-process).
        self.release()

    def __enter__(self) -> "DaemonLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def acquire_daemon_lock(url: str) -> DaemonLock | None:
    """Take the daemon lock for URL's database; DaemonRunning when another process has it.

    None for databases other than SQLite: several gateways may share a
    PostgreSQL queue, each under its own node name.
    """
    if make_url(url).get_backend_name() != "sqlite":
        return None
    path = lock_path(sqlite_path(url))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonRunning(f"gatewayd run is using {sqlite_path(url)} (it holds {path}); "
                            "stop it first: systemctl stop gatewayd") from None
    # Never inherited by children (e.g. espeak-ng): they would keep the lock alive.
    os.set_inheritable(fd, False)
    return DaemonLock(path, fd)


# ---------------------------------------------------------------------- backup
def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    return conn


def _check(conn: sqlite3.Connection, what: str) -> int:
    """Integrity-check CONN; return its message count. BackupError naming WHAT when damaged."""
    result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    if result != ["ok"]:
        raise BackupError(f"{what} is damaged ({'; '.join(result[:3])})")
    try:
        return int(conn.execute("SELECT count(*) FROM message").fetchone()[0])
    except sqlite3.DatabaseError:
        raise BackupError(f"{what} is not a gatewayd database (no message table)") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_file(db: Path, dest: Path) -> BackupInfo:
    """Copy the SQLite database DB (live or not) to DEST consistently; DEST appears only when complete."""
    if not db.is_file():
        raise BackupError(f"no database at {db}; check [database].url")
    dest = dest.resolve()
    if dest == db.resolve():
        raise BackupError(f"{dest} is the database itself; give another file name")
    if not dest.parent.is_dir():
        raise BackupError(f"{dest.parent} does not exist; create the directory first")
    if not os.access(dest.parent, os.W_OK | os.X_OK):
        raise CannotWrite(dest, "permission denied")
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise CannotWrite(dest, exc.strerror) from None
    src = _connect(db)
    try:
        out = _connect(tmp)
        try:
            # One step (pages=-1): one read transaction, so one consistent snapshot.
            # Done in steps, a write by the daemon would restart the copy.
            src.backup(out, pages=-1)
            # A standalone file: no -wal companion to lose when copying it around.
            out.execute("PRAGMA journal_mode=DELETE")
            messages = _check(out, f"the new backup {dest.name}")
        finally:
            out.close()
        os.chmod(tmp, 0o640)   # members' personal data: the gatewayd user and group only
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {db} failed: {exc}") from None
    except OSError as exc:
        raise CannotWrite(dest, exc.strerror) from None
    finally:
        src.close()
        tmp.unlink(missing_ok=True)
    return BackupInfo(dest, dest.stat().st_size, messages)


def backup(url: str, dest: str | os.PathLike[str]) -> BackupInfo:
    """`gatewayd backup FILE`: a consistent copy of the configured SQLite database."""
    return backup_file(sqlite_path(url), Path(dest))


# ---------------------------------------------------------------------- restore
def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from .db import alembic_config
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}


def check_backup(source: Path) -> int:
    """Raise BackupError unless SOURCE is an intact gatewayd backup this version can use; return its messages."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from None
    try:
        messages = _check(conn, f"backup {source}")
        try:
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            version = None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a SQLite database ({exc})") from None
    finally:
        conn.close()
    if version is None or version[0] not in _known_revisions():
        raise BackupError(f"{source} has schema {version[0] if version else 'none'}, which this gatewayd does "
                          "not know; restore it with the gatewayd version that made it")
    return messages


def restore_file(db: Path, source: Path, url: str) -> RestoreInfo:
    """Replace the contents of DB with backup SOURCE, keeping the old contents beside it."""
    check_backup(source)
    previous = None
    lock = acquire_daemon_lock(url)
    assert lock is not None   # sqlite_path() accepted the URL, so it is SQLite
    with lock:
        if db.is_file():
            previous = db.with_name(db.name + ".before-restore")
            backup_file(db, previous)
        db.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = _connect(db)
        try:
            # Through SQLite, under its locks: other open connections (the web
            # page) see the old or the new database, never a torn file.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=WAL")
            messages = _check(dst, f"the restored database {db}")
        except sqlite3.Error as exc:
            raise BackupError(f"restore into {db} failed: {exc}; the previous database is in {previous}") from None
        finally:
            src.close()
            dst.close()
    from .db import migrate
    migrate(url)   # a backup from an older schema is brought up to date
    return RestoreInfo(source, previous, messages)


def restore(url: str, source: str | os.PathLike[str]) -> RestoreInfo:
    """`gatewayd restore FILE`: refuses while `gatewayd run` uses the database."""
    return restore_file(sqlite_path(url), Path(source), url)
