"""The CLI contract: bad input is one clear line on stderr, exit 2, nothing half done."""
from __future__ import annotations

import io
import json
import sys

import pytest

from gatewayd.cli import main


@pytest.fixture
def conf(tmp_path, monkeypatch):
    p = tmp_path / "g.toml"
    p.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/g.db"\n[dispatch]\nquiet_hours = ""\n')
    monkeypatch.setenv("GATEWAYD_CONFIG", str(p))
    assert main(["init-db"]) == 0
    assert main(["network", "add", "N"]) == 0
    return p


def run(capsys, *argv, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        rc = main(list(argv))
    except SystemExit as exc:          # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *needles):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


BAD = [
    (("network", "add", ""), ["name", "missing"]),
    (("network", "add", "N"), ["already exists"]),
    (("member", "add", "--network", "N", "--phone", "12"), ["phone", "not a valid number"]),
    (("member", "add", "--network", "X", "--phone", "0470123456"), ["network 'X' does not exist"]),
    (("member", "add", "--network", "N", "--phone", "016123456", "--channel", "sms"), ["channel", "landline"]),
    (("member", "add", "--network", "N", "--phone", "0470123456", "--lang", "xx"), ["--lang", "invalid choice"]),
    (("member", "add", "--network", "N"), ["--phone"]),
    (("alert", "send", "--network", "N", "--category", "panic", "--text", "x"), ["--category"]),
    (("alert", "send", "--network", "N", "--category", "urgent", "--text", " "), ["text", "empty"]),
    (("alert", "send", "--network", "Z", "--category", "urgent", "--text", "x"), ["network 'Z'"]),
    (("alert", "send", "--category", "urgent", "--text", "x"), ["network", "missing"]),
    (("alert", "send", "--network", "N", "--category", "feedback", "--text", "x", "--parent", "99"),
     ["alert 99 does not exist"]),
    (("alert", "send", "--network", "N", "--category", "urgent", "--text", "x", "--text-lang", "fr"),
     ["--text-lang", "LANG=TEXT"]),
    (("alert", "send", "--network", "N", "--category", "urgent", "--text", "x" * 1001), ["text", "at most 1000"]),
    (("alert", "status", "77", "--json"), ["alert 77 does not exist"]),
    (("alert", "status", "abc"), ["expected a whole number"]),
    (("alert", "status", "99999999999999999999"), ["expected a number from 1 to 2^63-1"]),
    (("alert", "cancel", "5"), ["alert 5 does not exist"]),
    (("member", "import", "--network", "N", "/nonexistent.csv"), ["cannot read"]),
    (("frobnicate",), ["invalid choice"]),
]


@pytest.mark.parametrize("argv,needles", BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(conf, capsys, argv, needles):
    rc, _, err = run(capsys, *argv)
    assert_one_line_error(rc, err, *needles)


def test_bad_user_role_and_short_password(conf, capsys, monkeypatch):
    rc, _, err = run(capsys, "user", "add", "bob", "--role", "chief", stdin="x" * 12 + "\n", monkeypatch=monkeypatch)
    assert_one_line_error(rc, err, "--role")
    rc, _, err = run(capsys, "user", "add", "bob", "--role", "police", stdin="short\n", monkeypatch=monkeypatch)
    assert_one_line_error(rc, err, "password", "shorter than")


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text("[dispatch]\nqiet_hours = ''\n")
    rc, _, err = run(capsys, "-c", str(p), "status")
    assert_one_line_error(rc, err, "bad.toml", "qiet_hours", "did you mean 'quiet_hours'")


def test_uninitialised_database_says_run_init_db(tmp_path, capsys):
    p = tmp_path / "g.toml"
    p.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/none.db"\n')
    rc, _, err = run(capsys, "-c", str(p), "status", "--json")
    assert_one_line_error(rc, err, "gatewayd init-db")


def test_import_with_a_bad_row_imports_nothing(conf, capsys, tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("name,phone,channel,lang\nA,0470000001,sms,nl\nB,123,sms,nl\n")
    rc, _, err = run(capsys, "member", "import", "--network", "N", str(f))
    assert rc == 2 and "line 3: phone" in err and "nothing imported" in err
    rc, out, _ = run(capsys, "alert", "send", "--network", "N", "--category", "urgent", "--text", "x")
    assert json.loads(run(capsys, "alert", "status", out.strip(), "--json")[1])["messages"] == {}


def test_import_skip_bad_reports_and_imports_good(conf, capsys, tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("name,phone,channel,lang\nA,0470000001,sms,nl\nB,123,sms,nl\n")
    rc, out, err = run(capsys, "member", "import", "--network", "N", "--skip-bad", str(f))
    assert rc == 0 and "imported 1" in out and "line 3" in err


def test_alert_send_prints_the_id_and_status_counts(conf, capsys):
    run(capsys, "member", "add", "--network", "N", "--phone", "0470123456")
    run(capsys, "member", "add", "--network", "N", "--phone", "016123456")
    rc, out, err = run(capsys, "alert", "send", "--network", "N", "--category", "urgent", "--text", "Inbraak")
    assert rc == 0 and out.strip().isdigit() and "1 sms, 1 voice" in err
    rc, out, _ = run(capsys, "alert", "status", out.strip(), "--json")
    status = json.loads(out)
    assert set(status) >= {"id", "state", "messages"} and status["messages"] == {"queued": 2}


def test_user_add_reads_password_from_stdin(conf, capsys, monkeypatch):
    rc, out, _ = run(capsys, "user", "add", "agent.peeters", "--role", "police", stdin="correct horse battery\n",
                     monkeypatch=monkeypatch)
    assert rc == 0 and out.strip().isdigit()


def test_unreadable_csv_is_one_line(conf, capsys, tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("name,phone\n" + "x" * 200_000 + ",0470000001\n")
    rc, _, err = run(capsys, "member", "import", "--network", "N", str(f))
    assert_one_line_error(rc, err, "file: not a readable CSV file")


def test_init_db_seeds_the_templates_once_and_an_upgrade_keeps_their_edits(conf, tmp_path):
    """The page no longer seeds: a fresh box gets its BIN templates from `gatewayd init-db` (scripts/install
    and scripts/demo run it), and running it again on an upgrade leaves an admin's edits alone."""
    from gatewayd.db import make_engine
    from gatewayd.store import DEFAULT_TEMPLATES, Store
    from web import queries
    store = Store(make_engine(f"sqlite:///{tmp_path}/g.db"))
    keys = [t.key for t in queries.templates(store)]
    assert keys == [key for key, *_ in DEFAULT_TEMPLATES]
    burglary = next(t for t in queries.templates(store) if t.key == "burglary")
    store.update_template(burglary.id, "Inbraak (aangepast)", "urgent", {"nl": "Eigen tekst"}, "admin")
    assert main(["init-db"]) == 0
    after = queries.templates(store)
    assert [t.key for t in after] == keys
    assert next(t for t in after if t.key == "burglary").texts == {"nl": "Eigen tekst"}
    store.engine.dispose()


def test_alert_report_estimates_with_the_configured_devices_whatever_their_state_now(tmp_path, monkeypatch, capsys):
    """`alert report` says what the configured devices need, as before issue 13: a device the daemon
    last recorded as down (it may be back, or the daemon stopped) does not make it '?'."""
    from gatewayd.db import make_engine
    from gatewayd.outcomes import ChannelKind, DeviceHealth, DeviceState
    from gatewayd.store import Store
    p = tmp_path / "g.toml"
    p.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/g.db"\n[dispatch]\nquiet_hours = ""\n'
                 '[[emulated]]\nname = "sim1"\nkind = "sms"\nlatency = 0.01\nrate_per_minute = 60\n')
    monkeypatch.setenv("GATEWAYD_CONFIG", str(p))
    assert main(["init-db"]) == 0
    assert main(["network", "add", "N"]) == 0
    assert main(["member", "add", "--network", "N", "--phone", "0470 12 34 56"]) == 0
    capsys.readouterr()
    rc, out, _ = run(capsys, "alert", "send", "--network", "N", "--category", "urgent", "--text", "Hallo")
    alert_id = out.split()[0]
    store = Store(make_engine(f"sqlite:///{tmp_path}/g.db"))
    store.record_device("sim1", ChannelKind.SMS.value, "node-a", DeviceHealth(DeviceState.DOWN, last_error="gone"))
    store.engine.dispose()
    rc, out, err = run(capsys, "alert", "report", alert_id, "--json")
    assert rc == 0, err
    assert json.loads(out)["estimated_seconds"] == 1.0       # one SMS at 60 a minute
