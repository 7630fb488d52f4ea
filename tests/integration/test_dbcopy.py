"""`gatewayd migrate-to URL`: a SQLite box's data moved into PostgreSQL, nothing lost, nothing half done."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, inspect, select

from gatewayd.model import Base
from tests.fixtures.daemon import Gateway

pytestmark = pytest.mark.postgres


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as c:
        got = {t.name: c.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    engine.dispose()
    return got


@pytest.fixture
def box(tmp_path):
    g = Gateway(tmp_path / "box", '[[emulated]]\nname = "sim1"\nlatency = 0.0\n')
    g.cli("init-db")
    g.cli("network", "add", "N")
    csv = tmp_path / "members.csv"
    csv.write_text("name,phone,channel,lang\n" + "\n".join(f"m{i},+3247000000{i},sms,nl" for i in range(5)) + "\n")
    g.cli("member", "import", "--network", "N", str(csv))
    g.cli("user", "add", "agent", "--role", "police", input="a long enough password\n")
    g.alert_id = int(g.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "x").stdout)
    return g


def test_migrate_to_copies_every_row_and_the_new_database_carries_on(box, pg_empty_url, tmp_path):
    before = counts(box.url)
    out = box.cli("migrate-to", pg_empty_url)
    assert f"copied {sum(before.values())} row(s)" in out.stdout
    assert "[database].url" in out.stderr and "node_id_file" in out.stderr
    assert counts(pg_empty_url) == before
    moved = Gateway(tmp_path / "moved", '[[emulated]]\nname = "sim1"\nlatency = 0.0\n', url=pg_empty_url)
    assert moved.status(box.alert_id)["messages"] == {"queued": 5}
    # New rows get new ids: the sequences were moved past the copied ones.
    assert int(moved.cli("alert", "send", "--network", "N", "--category", "urgent", "--text", "y").stdout) \
        == box.alert_id + 1
    moved.cli("member", "add", "--network", "N", "--phone", "+32470000099")


def test_migrate_to_refuses_a_database_that_holds_data(box, pg_empty_url):
    box.cli("migrate-to", pg_empty_url)
    p = box.cli("migrate-to", pg_empty_url, check=False)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "already holds data" in p.stderr


def test_migrate_to_refuses_while_the_daemon_runs(box, pg_empty_url):
    box.start()
    try:
        box.wait_for(lambda: box.status(box.alert_id)["state"] == "done")
        p = box.cli("migrate-to", pg_empty_url, check=False)
        assert p.returncode == 2 and "gatewayd run is using" in p.stderr and "stop it first" in p.stderr
    finally:
        box.stop()
    engine = create_engine(pg_empty_url)
    assert inspect(engine).get_table_names() == []       # not even the schema: nothing was done
    engine.dispose()
