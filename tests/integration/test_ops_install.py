"""scripts/install --prefix: a complete test install, twice (idempotent)."""
from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = ["gatewayd.service", "gatewayd-web.service", "gatewayd-purge.service", "gatewayd-purge.timer",
         "gatewayd-backup.service", "gatewayd-backup.timer"]

pytestmark = pytest.mark.timeout(900)


def _source_copy(dst: Path) -> Path:
    """A frozen copy of the checkout: teammates editing the tree must not change what is installed."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.mo")
    for d in ("gatewayd", "web", "systemd", "scripts", "nginx"):
        shutil.copytree(REPO / d, dst / d, ignore=ignore)
    for f in ("pyproject.toml", "config.example.toml", "README.md"):
        if (REPO / f).exists():
            shutil.copy2(REPO / f, dst / f)
    return dst


def _install(src: Path, prefix: Path, *options: str) -> subprocess.CompletedProcess:
    p = subprocess.run(["bash", str(src / "scripts" / "install"), "--prefix", str(prefix), *options],
                       capture_output=True, text=True, timeout=800, stdin=subprocess.DEVNULL,
                       env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert p.returncode == 0, f"install failed:\n{p.stdout}\n{p.stderr[-3000:]}"
    return p


REAL_PATHS = [Path("/opt/gatewayd"), Path("/etc/gatewayd"), Path("/var/lib/gatewayd"),
              Path("/etc/systemd/system/gatewayd.service")]


def _real_state() -> dict[Path, float | None]:
    return {p: p.stat().st_mtime if p.exists() else None for p in REAL_PATHS}


@pytest.fixture(scope="module")
def real_before():
    return _real_state()


@pytest.fixture(scope="module")
def installed(tmp_path_factory, real_before):
    """(source, prefix, first run) after one install.

    The prefix lies in a world-traversable directory (pytest's own is 0700), so what a
    second local user can read is decided by the install's modes alone."""
    src = _source_copy(tmp_path_factory.mktemp("src"))
    prefix = Path(tempfile.mkdtemp(prefix="gatewayd-install-", dir="/var/tmp"))
    prefix.chmod(0o755)
    yield src, prefix, _install(src, prefix, "--listen", "0.0.0.0:8080")
    shutil.rmtree(prefix, ignore_errors=True)


def _conf(prefix: Path) -> Path:
    return prefix / "etc" / "gatewayd" / "gatewayd.toml"


def _gatewayd(prefix: Path, *args: str) -> subprocess.CompletedProcess:
    exe = prefix / "opt" / "gatewayd" / "venv" / "bin" / "gatewayd"
    return subprocess.run([str(exe), "-c", str(_conf(prefix)), *args], capture_output=True, text=True, timeout=120)


def test_install_gives_a_working_program_config_and_database(installed):
    _src, prefix, _ = installed
    p = _gatewayd(prefix, "status", "--json")
    assert p.returncode == 0, p.stderr
    assert (prefix / "var" / "lib" / "gatewayd" / "gatewayd.db").is_file()


def test_config_points_into_the_prefix_with_a_fresh_web_secret(installed):
    _src, prefix, _ = installed
    text = _conf(prefix).read_text()
    assert f"sqlite:///{prefix}/var/lib/gatewayd/gatewayd.db" in text
    assert "change-me-to-a-long-random-string" not in text
    assert oct(_conf(prefix).stat().st_mode & 0o777) == "0o640"
    # No placeholder is live: the example's modem port and Asterisk secret are commented out.
    live = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert not [l for l in live if "change-me" in l or "/dev/serial/by-id/usb-HUAWEI" in l], live
    assert "# [[modems]]" in text and "# [asterisk]" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_installed_units_verify(installed):
    _src, prefix, _ = installed
    units = [str(prefix / "etc" / "systemd" / "system" / u) for u in UNITS]
    p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert str(prefix / "opt" / "gatewayd" / "venv" / "bin" / "gatewayd") in Path(units[0]).read_text()


def test_second_install_changes_nothing_and_keeps_data(installed):
    src, prefix, _ = installed
    conf_before = _conf(prefix).read_text()
    units_before = {u: (prefix / "etc" / "systemd" / "system" / u).read_text() for u in UNITS}
    assert _gatewayd(prefix, "network", "add", "BIN Kessel-Lo").returncode == 0

    second = _install(src, prefix)

    assert "up to date" in second.stdout
    assert "keeping the existing" in second.stdout
    assert _conf(prefix).read_text() == conf_before
    assert {u: (prefix / "etc" / "systemd" / "system" / u).read_text() for u in UNITS} == units_before
    with sqlite3.connect(prefix / "var" / "lib" / "gatewayd" / "gatewayd.db") as c:
        assert c.execute("SELECT name FROM network").fetchall() == [("BIN Kessel-Lo",)]


def test_install_touches_nothing_outside_the_prefix(installed, real_before):
    _src, _prefix, first = installed
    assert "not enabled" in first.stdout
    assert _real_state() == real_before


def _exec_start(unit: Path) -> str:
    """The ExecStart= command line as systemd hands it to the program ($$ and %% unescaped)."""
    line = next(ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").replace("$$", "$").replace("%%", "%")


def test_installed_backup_timer_command_writes_a_weekday_backup(installed):
    _src, prefix, _ = installed
    cmd = _exec_start(prefix / "etc" / "systemd" / "system" / "gatewayd-backup.service")
    assert cmd.startswith("/bin/sh -c '") and cmd.endswith("'")
    p = subprocess.run(["/bin/sh", "-c", cmd[len("/bin/sh -c '"):-1]], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    weekday = subprocess.run(["date", "+%a"], capture_output=True, text=True).stdout.strip()
    assert (prefix / "var" / "lib" / "gatewayd" / "backups" / f"gatewayd-{weekday}.db").is_file()


def test_installed_purge_timer_command_runs(installed):
    _src, prefix, _ = installed
    cmd = _exec_start(prefix / "etc" / "systemd" / "system" / "gatewayd-purge.service").split()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "purged" in p.stdout


# ---------------------------------------------------------------------- the members' data stays private
OTHER_USER = "nobody"   # a second local account, in none of gatewayd's groups
_networks = itertools.count(1)


def _data(prefix: Path) -> Path:
    return prefix / "var" / "lib" / "gatewayd"


def _open_to_others(root: Path) -> list[str]:
    """Everything under ROOT (ROOT included) that grants anything to 'other'."""
    found = []
    for p in [root, *root.rglob("*")]:
        mode = p.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o007:
            found.append(f"{p.relative_to(root.parent)} {oct(mode & 0o777)}")
    return found


def _readable_by_other(paths: list[Path]) -> list[str]:
    """The paths the other user can really open (real permissions, as that user)."""
    pwd.getpwnam(OTHER_USER)
    readable = []
    for p in paths:
        probe = ["test", "-r", str(p)] if p.is_file() else ["ls", str(p)]
        r = subprocess.run(["runuser", "-u", OTHER_USER, "--", *probe], capture_output=True, timeout=30)
        if r.returncode == 0:
            readable.append(str(p))
    return readable


def _member_data_written(prefix: Path) -> None:
    network = f"BIN Privé {next(_networks)}"
    assert _gatewayd(prefix, "network", "add", network).returncode == 0
    p = _gatewayd(prefix, "member", "add", "--network", network, "--phone", "0470123456", "--name", "Anna")
    assert p.returncode == 0, p.stderr
    for unit in ("gatewayd-backup.service", "gatewayd-purge.service"):
        cmd = _exec_start(prefix / "etc" / "systemd" / "system" / unit)
        argv = ["/bin/sh", "-c", cmd[len("/bin/sh -c '"):-1]] if cmd.startswith("/bin/sh -c '") else cmd.split()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ})
        assert r.returncode == 0, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_a_second_local_user_reads_nothing_after_install_backup_and_purge(installed):
    _src, prefix, _ = installed
    os.umask(0o022)   # the operator's ordinary umask: privacy must not depend on it
    _member_data_written(prefix)
    data = _data(prefix)
    assert _open_to_others(data) == []
    assert _open_to_others(prefix / "etc" / "gatewayd") == []
    files = [p for p in data.rglob("*") if p.is_file()] + [data, data / "backups"]
    assert any(p.name.endswith(".db") and p.parent.name == "backups" for p in files)
    assert _readable_by_other(files + [_conf(prefix)]) == []


def test_database_and_backups_are_0640_in_a_0750_directory(installed):
    _src, prefix, _ = installed
    data = _data(prefix)
    assert stat.S_IMODE(data.stat().st_mode) == 0o750
    assert stat.S_IMODE((data / "backups").stat().st_mode) == 0o750
    _member_data_written(prefix)
    for db in [data / "gatewayd.db", *(data / "backups").glob("*.db")]:
        assert stat.S_IMODE(db.stat().st_mode) == 0o640, db


def test_reinstall_repairs_an_install_that_was_open_to_everyone(installed):
    """Installs made before this fix have a 0755 directory and a 0644 database."""
    src, prefix, _ = installed
    data = _data(prefix)
    data.chmod(0o755)
    (data / "backups").chmod(0o755)
    (data / "gatewayd.db").chmod(0o644)
    _install(src, prefix)
    assert _open_to_others(data) == []
    assert stat.S_IMODE((data / "gatewayd.db").stat().st_mode) == 0o640


def test_a_box_without_the_postgres_extra_says_how_to_add_it(installed, tmp_path):
    _src, prefix, _ = installed
    conf = tmp_path / "pg.toml"
    conf.write_text('[database]\nurl = "postgresql+psycopg://gatewayd@127.0.0.1:1/gatewayd"\n')
    exe = prefix / "opt" / "gatewayd" / "venv" / "bin" / "gatewayd"
    for cmd in (["status"], ["init-db"]):
        p = subprocess.run([str(exe), "-c", str(conf), *cmd], capture_output=True, text=True, timeout=120)
        assert p.returncode == 2, p.stderr
        assert "gatewayd[postgres]" in p.stderr and "Traceback" not in p.stderr


# ---------------------------------------------------------------------- options, PATH, size, uninstall
def test_help_documents_every_option_and_exits_0():
    p = subprocess.run(["bash", str(REPO / "scripts" / "install"), "--help"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    for option in ("--admin", "--no-admin", "--listen", "--https", "--postgres", "--python", "--no-packages", "--prefix",
                   "--uninstall", "--purge-data", "--help"):
        assert re.search(rf"^\s+(-h, )?{option}\b", p.stdout, re.M), option
    # Review 16: an upgrade on a running box restarts the daemon and page (they ran the old program).
    assert re.search(r"^\s+upgrade\s.*systemctl try-restart", p.stdout, re.M), p.stdout
    bad = subprocess.run(["bash", str(REPO / "scripts" / "install"), "--bogus"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "--bogus" in bad.stderr


def test_the_installer_names_every_debian_package_the_box_needs(installed):
    _src, _prefix, first = installed
    line = next(l for l in first.stdout.splitlines() if "Debian packages needed:" in l)
    for pkg in ("python3-venv", "espeak-ng", "sox", "sqlite3"):
        assert pkg in line.split(), pkg
    assert "libpq5" not in line.split()   # SQLite: no PostgreSQL client library


def test_gatewayd_is_on_path_with_the_installed_config(installed):
    _src, prefix, _ = installed
    env = {k: v for k, v in os.environ.items() if k != "GATEWAYD_CONFIG"}
    p = subprocess.run([str(prefix / "usr" / "local" / "bin" / "gatewayd"), "status", "--json"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    assert '"queue"' in p.stdout


def test_listen_option_and_its_explanation(installed):
    _src, prefix, first = installed
    assert 'listen = "0.0.0.0:8080"' in _conf(prefix).read_text()
    assert "listens on 0.0.0.0:8080" in first.stdout


def test_without_a_terminal_the_installer_says_how_to_make_the_first_admin(installed):
    _src, _prefix, first = installed
    assert "gatewayd user add NAME --role admin" in first.stdout


def test_admin_option_creates_the_first_admin(installed):
    src, prefix, _ = installed
    p = subprocess.run(["bash", str(src / "scripts" / "install"), "--prefix", str(prefix), "--admin", "chief"],
                       input="a-long-enough-password\n", capture_output=True, text=True, timeout=800)
    assert p.returncode == 0, p.stdout + p.stderr
    with sqlite3.connect(_data(prefix) / "gatewayd.db") as c:
        assert c.execute("SELECT role FROM user_account WHERE username='chief'").fetchall() == [("admin",)]


def test_the_installed_program_has_only_the_babel_locales_we_ship(installed):
    _src, prefix, _ = installed
    data = next((prefix / "opt" / "gatewayd" / "venv" / "lib").glob("python3*/site-packages/babel/locale-data"))
    names = {p.stem for p in data.glob("*.dat")}
    assert {"root", "nl", "nl_BE", "fr", "fr_BE", "de", "en"} <= names and len(names) < 20
    py = prefix / "opt" / "gatewayd" / "venv" / "bin" / "python"
    p = subprocess.run([str(py), "-I", "-c", "from babel.dates import format_date; import datetime;"
                        "print([format_date(datetime.date(2026, 12, 2), 'full', locale=l)"
                        " for l in ('nl_BE', 'fr_BE', 'de_BE', 'en')])"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "december" in p.stdout and "décembre" in p.stdout and "Dezember" in p.stdout


def test_the_translations_step_leaves_nothing_in_the_checkout(installed):
    src, _prefix, _ = installed
    assert list(src.rglob("__pycache__")) == []
    assert list(src.rglob("*.mo")) == []


def test_an_upgrade_after_git_pull_reinstalls_the_program(installed):
    src, prefix, _ = installed
    with (src / "gatewayd" / "__init__.py").open("a") as f:
        f.write("# a change, as after git pull\n")
    p = _install(src, prefix)
    assert "installing gatewayd" in p.stdout and "install: done" in p.stdout
    assert _gatewayd(prefix, "status", "--json").returncode == 0


def _distributions(prefix: Path) -> set[str]:
    """The distributions installed in the program's own venv (not the system's)."""
    site = next((prefix / "opt" / "gatewayd" / "venv" / "lib").glob("python3*/site-packages"))
    return {d.name.split("-", 1)[0].lower().replace("_", "-") for d in site.glob("*.dist-info")}


def test_an_upgrade_drops_the_libraries_the_program_no_longer_uses(installed):
    """A box installed before issue 13 has the full `phonenumbers` (~40 MB of geodata; the program
    now takes phonenumberslite, the same module without it) and python-gsmmodem-new (tests only now).
    After the upgrade neither is left, and the one `phonenumbers` module left still parses numbers."""
    src, prefix, _ = installed
    py = str(prefix / "opt" / "gatewayd" / "venv" / "bin" / "python")
    pip = [py, "-m", "pip", "-q", "--disable-pip-version-check"]
    # The venv as the earlier program left it.
    subprocess.run([*pip, "uninstall", "-y", "phonenumberslite"], check=True, capture_output=True, timeout=300)
    subprocess.run([*pip, "install", "--no-deps", "phonenumbers", "python-gsmmodem-new"], check=True,
                   capture_output=True, timeout=600)
    assert {"phonenumbers", "python-gsmmodem-new"} <= _distributions(prefix)
    with (src / "gatewayd" / "__init__.py").open("a") as f:
        f.write("# the upgrade, as after git pull\n")

    _install(src, prefix)

    left = _distributions(prefix)
    assert "phonenumberslite" in left
    assert not {"phonenumbers", "python-gsmmodem-new"} & left, left
    site = next((prefix / "opt" / "gatewayd" / "venv" / "lib").glob("python3*/site-packages"))
    assert not (site / "phonenumbers" / "geodata").exists()      # the 40 MB the switch was for
    assert _gatewayd(prefix, "network", "add", "BIN Heverlee").returncode == 0
    added = _gatewayd(prefix, "member", "add", "--network", "BIN Heverlee", "--phone", "0470 12 34 99")
    assert added.returncode == 0, added.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl missing")
def test_https_option_puts_nginx_with_a_certificate_in_front(installed):
    """scripts/tls-setup (issue 11) wired in; a --prefix install writes its files only."""
    src, prefix, _ = installed
    p = _install(src, prefix, "--https")
    site = prefix / "etc" / "nginx" / "sites-available" / "gatewayd"
    assert site.is_file() and "ssl_certificate" in site.read_text()
    assert (prefix / "etc" / "gatewayd" / "tls" / "gatewayd.crt").is_file()
    text = _conf(prefix).read_text()
    assert "secure_cookies = true" in text
    assert oct(_conf(prefix).stat().st_mode & 0o777) == "0o640"
    assert "tls-setup:" in p.stdout


def _install_on_a_terminal(src: Path, prefix: Path, answers: list[tuple[str, str]]) -> str:
    """Run the installer on a terminal (script(1) gives it a pty) and answer each prompt as it appears."""
    import select
    cmd = f"bash {src / 'scripts' / 'install'} --prefix {prefix}"
    p = subprocess.Popen(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    out, pending = b"", list(answers)
    deadline = time.monotonic() + 800
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        if pending and pending[0][0].encode() in out.rsplit(b"\n", 1)[-1]:
            p.stdin.write(pending.pop(0)[1].encode() + b"\n")
            p.stdin.flush()
    p.stdin.close()
    assert p.wait(timeout=60) == 0, out.decode(errors="replace")[-3000:]
    assert pending == [], f"never asked {pending[0][0]!r}:\n" + out.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


@pytest.mark.skipif(shutil.which("script") is None, reason="script(1) missing")
def test_on_a_terminal_the_installer_asks_for_the_first_admin_then_uninstall_keeps_the_data(tmp_path):
    src = _source_copy(tmp_path / "src")
    prefix = tmp_path / "root"
    out = _install_on_a_terminal(src, prefix, [("name of the first admin user", "boss"),
                                               ("password:", "a-long-enough-password"),
                                               ("again:", "a-long-enough-password")])
    assert "admin user boss created" in out
    with sqlite3.connect(_data(prefix) / "gatewayd.db") as c:
        assert c.execute("SELECT role FROM user_account WHERE username='boss'").fetchall() == [("admin",)]
    db = _data(prefix) / "gatewayd.db"
    p = _install(src, prefix, "--uninstall")
    assert "kept" in p.stdout
    assert not (prefix / "opt" / "gatewayd").exists()
    assert not (prefix / "usr" / "local" / "bin" / "gatewayd").exists()
    assert not any((prefix / "etc" / "systemd" / "system").glob("gatewayd*"))
    assert db.is_file() and _conf(prefix).is_file()
    _install(src, prefix, "--uninstall", "--purge-data")
    assert not db.exists() and not _conf(prefix).exists()
