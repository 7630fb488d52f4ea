"""The operations commands through the real `gatewayd` command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

NUMBER = "+32470123456"


class Cli:
    def __init__(self, tmp: Path, db_url: str | None = None):
        self.db = tmp / "gatewayd.db"
        self.conf = tmp / "gatewayd.toml"
        self.conf.write_text(f'[database]\nurl = "{db_url or f"sqlite:///{self.db}"}"\n\n'
                             f'[[emulated]]\nname = "sim1"\n\n[dispatch]\nquiet_hours = ""\n\n'
                             f'[retention]\ndays = 30\n')

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "gatewayd", "-c", str(self.conf), *args], capture_output=True,
                           text=True, timeout=120)
        if ok:
            assert p.returncode == 0, f"gatewayd {' '.join(args)}: {p.stderr}"
        return p


@pytest.fixture
def gw(tmp_path) -> Cli:
    cli = Cli(tmp_path)
    cli("init-db")
    cli("network", "add", "BIN Noord")
    cli("member", "add", "--network", "BIN Noord", "--phone", "0470 12 34 56", "--name", "Anna")
    cli("alert", "send", "--network", "BIN Noord", "--category", "urgent", "--text", "Let op")
    return cli


def test_member_export_prints_json_about_the_person(gw):
    data = json.loads(gw("member", "export", "0470123456").stdout)
    assert data["member"]["phone"] == NUMBER and data["messages"][0]["text"] == "Let op"


def test_member_export_to_a_private_file(gw, tmp_path):
    out = tmp_path / "anna.json"
    gw("member", "export", NUMBER, "-o", str(out))
    assert json.loads(out.read_text())["member"]["name"] == "Anna"
    assert out.stat().st_mode & 0o077 == 0


def test_member_export_over_an_existing_open_file_makes_it_private(gw, tmp_path):
    """An export written over a file that others could read (0644) leaves no personal data readable."""
    out = tmp_path / "anna.json"
    out.write_text("old\n")
    out.chmod(0o644)
    gw("member", "export", NUMBER, "-o", str(out))
    assert json.loads(out.read_text())["member"]["name"] == "Anna"
    assert out.stat().st_mode & 0o077 == 0


def test_member_erase_then_export_finds_nothing(gw):
    gw("member", "erase", NUMBER)
    p = gw("member", "export", NUMBER, ok=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "does not exist" in p.stderr


def test_member_erase_of_a_bad_number_is_bad_input(gw):
    p = gw("member", "erase", "12", ok=False)
    assert p.returncode == 2 and "phone" in p.stderr


def test_purge_reports_what_it_did(gw):
    assert "purged text and number of 0 message(s)" in gw("purge").stdout


def test_purge_rejects_negative_days(gw):
    assert gw("purge", "--days", "-1", ok=False).returncode == 2


def test_backup_and_restore_round_trip(gw, tmp_path):
    gw("backup", str(tmp_path / "b.db"))
    gw("network", "add", "later")
    assert "restored" in gw("restore", str(tmp_path / "b.db")).stdout
    p = gw("network", "add", "later")   # it is gone again, so it can be added
    assert p.returncode == 0


def test_restore_of_a_missing_file_is_one_line(gw, tmp_path):
    p = gw("restore", str(tmp_path / "nope.db"), ok=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no backup file" in p.stderr


def test_backup_of_postgresql_points_to_pg_dump(tmp_path):
    p = Cli(tmp_path, "postgresql+psycopg://gw:pw@127.0.0.1:1/gw")("backup", str(tmp_path / "b.db"), ok=False)
    assert p.returncode == 2 and "pg_dump" in p.stderr
