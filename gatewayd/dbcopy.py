"""Moving a box's data to another database: `gatewayd migrate-to URL` (SQLite -> PostgreSQL).

The source is the configured database, at this gatewayd's schema; the target
gets the schema from the migrations, must hold no data yet, and receives every
table in one transaction (nothing half-copied), parents before children. On
PostgreSQL the id sequences are then set past the copied ids, so new rows do
not collide with old ones. The daemon must be stopped meanwhile: on SQLite
its lock is taken for the whole copy.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Integer, Table, func, insert, select, text
from sqlalchemy.engine import make_url

from .db import check_schema, make_engine, migrate
from .errors import GatewaydError
from .model import Base

BATCH = 1000


class CopyError(GatewaydError):
    """The data cannot be copied; the message says why and what to do."""


@dataclass(frozen=True)
class CopyReport:
    rows: dict[str, int]      # table -> rows copied

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_database(source_url: str, target_url: str) -> CopyReport:
    """Copy every row of SOURCE_URL into the empty database TARGET_URL (schema made first)."""
    if make_url(source_url) == make_url(target_url):
        raise CopyError("target: it is the configured database itself; give the new database's URL")
    from .backup import acquire_daemon_lock
    lock = acquire_daemon_lock(source_url)   # DaemonRunning (one line) while `gatewayd run` works on it
    try:
        source = make_engine(source_url)
        check_schema(source)
        try:
            migrate(target_url)
        except Exception as exc:
            raise CopyError(f"target: cannot create the schema in {target_url.split('@')[-1]}: "
                            f"{getattr(exc, 'orig', exc)}") from None
        target = make_engine(target_url)
        try:
            return _copy(source, target)
        finally:
            source.dispose()
            target.dispose()
    finally:
        if lock is not None:
            lock.release()


def _copy(source: Engine, target: Engine) -> CopyReport:
    tables = Base.metadata.sorted_tables          # parents before children
    copied: dict[str, int] = {}
    with source.connect() as src, target.begin() as dst:
        busy = [t.name for t in tables if dst.scalar(select(func.count()).select_from(t))]
        if busy:
            raise CopyError(f"target: already holds data (table {busy[0]}); copy into a new, empty database")
        for table in tables:
            n = 0
            result = src.execution_options(yield_per=BATCH).execute(select(table))
            for rows in result.mappings().partitions(BATCH):
                dst.execute(insert(table), [dict(r) for r in rows])
                n += len(rows)
            copied[table.name] = n
        if dst.dialect.name == "postgresql":
            _advance_sequences(dst, tables)
    return CopyReport(copied)


def _advance_sequences(dst: Connection, tables: Iterable[Table]) -> None:
    """Set each serial id's sequence past the highest id copied."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer) or pk[0].autoincrement is False:
            continue
        seq = dst.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name})
        if seq:
            dst.execute(text(f'SELECT setval(:s, coalesce((SELECT max("{pk[0].name}") FROM "{table.name}"), 0) + 1, '
                             "false)"), {"s": seq})
