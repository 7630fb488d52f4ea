"""Engine and schema: SQLite in WAL mode with a busy timeout, or PostgreSQL."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .errors import GatewaydError

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration; a unit test keeps it equal to Alembic's head. Checked
# without importing Alembic, which would add a quarter second to every command.
SCHEMA_HEAD = "0001_initial"


class DatabaseError(GatewaydError):
    """The database cannot be used; the message says what to check."""


class DriverMissing(DatabaseError):
    """The database URL names a driver this installation does not have."""


if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig


def require_postgres_driver() -> None:
    """PostgreSQL's driver is an extra: a box on SQLite does not carry it."""
    from importlib.util import find_spec
    if find_spec("psycopg") is None:
        raise DriverMissing("[database].url is PostgreSQL, but its driver (psycopg) is not installed: "
                            "run scripts/install again (it adds it for a postgresql URL) or "
                            "pip install 'gatewayd[postgres]' into gatewayd's venv")


def make_engine(url: str, idle_in_transaction_seconds: float | None = None) -> Engine:
    """An engine for URL; SQLite gets WAL, a busy timeout and foreign keys.

    IDLE_IN_TRANSACTION_SECONDS (PostgreSQL): the server ends a session of this engine that sits that
    long inside a transaction between two statements, rolling its work back and freeing its locks. A
    process frozen mid-transaction (SIGSTOP, a paused VM, a hung box) would otherwise hold its row locks
    for as long as it stays frozen, and whoever needs those rows waits as long (gatewayd/nodes.py).
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode is durable against process crashes (kill -9) and
            # keeps the database consistent on power loss.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    if u.get_backend_name() == "postgresql":
        require_postgres_driver()
    connect_args = {}
    if idle_in_transaction_seconds is not None:
        ms = max(1, round(idle_in_transaction_seconds * 1000))
        # connect_args replaces the URL's own `options` (a search_path, say): keep them, add ours.
        given = u.query.get("options", ())
        given = (given,) if isinstance(given, str) else given
        connect_args["options"] = " ".join((*given, f"-c idle_in_transaction_session_timeout={ms}"))
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Create or upgrade the schema to the newest migration."""
    from alembic import command
    if make_url(url).get_backend_name() == "postgresql":
        require_postgres_driver()
    command.upgrade(alembic_config(url), "head")


def check_schema(engine: Engine) -> None:
    """Raise DatabaseError when the schema is missing or older than this code."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        current = None
    if current != SCHEMA_HEAD:
        raise DatabaseError(f"database schema is at {current or 'nothing'}, this gatewayd needs {SCHEMA_HEAD}: "
                            "run 'gatewayd init-db'")
