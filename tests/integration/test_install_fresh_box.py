"""A fresh box: `sudo make install` in a minimal Debian 12 root, as a municipality's IT
person would on a new Raspberry Pi, then the result checked as that box would run it.

The root comes from scripts/bookworm-rig (debootstrap once, cached under
/var/tmp/gatewayd-rig) and is copied for every run, so each run installs on a
box that never saw gatewayd. The copy does not inherit this machine's pip
configuration or CA bundle: both are copied in (a Pi reaches the package
registry directly). Nothing is booted: the daemon and the page are started in the
root as the gatewayd user, on emulated devices, and reached over loopback.
"""
from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import stat
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RIG = Path(os.environ.get("GATEWAYD_RIG_DIR", "/var/tmp/gatewayd-rig"))
SRC_IN_BOX = "/usr/src/gatewayd"
SERVICES = ["gatewayd.service", "gatewayd-web.service", "gatewayd-purge.service", "gatewayd-backup.service"]
ENABLED = {"multi-user.target.wants": ["gatewayd.service", "gatewayd-web.service"],
           "timers.target.wants": ["gatewayd-purge.timer", "gatewayd-backup.timer"]}
VENV_TARGET_MB = 90

pytestmark = [
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.geteuid() != 0, reason="building a Debian root and chrooting into it needs root"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap missing (scripts/system-deps test)"),
]


# ---------------------------------------------------------------------- the box
def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if p.startswith(prefix)]


def _unmount_all(root: Path) -> None:
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=60)


def _remove_box(root: Path) -> None:
    """Delete a previous run's copy, never through a mount that is still there (/dev!)."""
    if not root.exists():
        return
    _unmount_all(root)
    assert _mounts_under(root) == [], f"{root} still has mounts; not deleting it"
    shutil.rmtree(root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bind(src: Path, dst: Path, readonly: bool = False) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(src), str(dst)], check=True, timeout=60)
    if readonly:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True, timeout=60)


def _copy_pip_setup(root: Path) -> dict[str, str]:
    """This machine's pip configuration and CA bundle, copied in; the env that points at them.

    `sudo` drops the environment, so the bundle is named in the box's /etc/pip.conf too."""
    for conf in (Path("/etc/pip.conf"), Path.home() / ".config" / "pip" / "pip.conf",
                 Path.home() / ".pip" / "pip.conf"):
        if conf.is_file():
            dst = root / ("etc/pip.conf" if conf == Path("/etc/pip.conf") else "root" / conf.relative_to(Path.home()))
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(conf, dst)
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    ca = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        # Not at the usual path: installing ca-certificates in the box rewrites that file.
        inside = "/usr/local/share/gatewayd-test/ca.crt"
        dst = root / inside.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ca, dst)
        env["PIP_CERT"] = inside
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(root / "etc/pip.conf")
        if not conf.has_section("global"):
            conf.add_section("global")
        conf.set("global", "cert", inside)
        with open(root / "etc/pip.conf", "w") as f:
            conf.write(f)
    return env


def _copy_source(dst: Path) -> None:
    """The checkout as `git clone` gives it: no venv, no build products."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.mo")
    for d in ("gatewayd", "web", "systemd", "scripts", "nginx"):
        shutil.copytree(REPO / d, dst / d, ignore=ignore)
    for f in ("pyproject.toml", "config.example.toml", "README.md", "Makefile", "LICENSE"):
        if (REPO / f).exists():
            shutil.copy2(REPO / f, dst / f)


class Box:
    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.env = env
        self.procs: list[subprocess.Popen] = []

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def argv(self, *cmd: str, user: str | None = None) -> list[str]:
        # The user's own primary group when none is named (nobody's is nogroup).
        who = [f"--userspec={user}"] + (["--groups=dialout"] if user == "gatewayd" else []) if user else []
        env = ["/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME=/root", "LANG=C.UTF-8", *(f"{k}={v}" for k, v in self.env.items())]
        return ["chroot", *who, str(self.root), *env, *cmd]

    def run(self, *cmd: str, user: str | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*cmd, user=user), capture_output=True, text=True, timeout=timeout,
                              stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)

    def start(self, *cmd: str, user: str, log: Path) -> subprocess.Popen:
        p = subprocess.Popen(self.argv(*cmd, user=user), stdout=log.open("w"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)


@pytest.fixture(scope="module")
def box():
    base = Path(subprocess.run(["bash", str(REPO / "scripts" / "bookworm-rig"), str(RIG)], capture_output=True,
                               text=True, timeout=1500, check=True).stdout.strip().splitlines()[-1])
    # One copy per test session: several sessions (engineers, CI) may run this at once.
    for stale in RIG.glob("bookworm-box.*"):
        if not _alive(int(stale.suffix[1:])):
            _remove_box(stale)
    root = RIG / f"bookworm-box.{os.getpid()}"
    _remove_box(root)
    subprocess.run(["cp", "-a", str(base), str(root)], check=True, timeout=600)
    try:
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True, timeout=60)
        _bind(Path("/sys"), root / "sys", readonly=True)
        _bind(Path("/dev"), root / "dev")
        _bind(Path("/dev/pts"), root / "dev/pts")
        # Caches kept between runs, so a rerun downloads nothing again. pip's cache copes with
        # sessions sharing it; apt locks its archive directory, so .debs are copied in and back.
        (RIG / "bookworm-pip-cache").mkdir(parents=True, exist_ok=True)
        _bind(RIG / "bookworm-pip-cache", root / "root/.cache/pip")
        debs = RIG / "bookworm-apt-archives"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-n", *map(str, debs.glob("*.deb")), str(root / "var/cache/apt/archives")],
                       timeout=300, capture_output=True)
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        env = _copy_pip_setup(root)
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        _copy_source(root / SRC_IN_BOX.lstrip("/"))
        b = Box(root, env)
        b.install = b.run("bash", "-c", f"cd {SRC_IN_BOX} && sudo make install", timeout=1200)
        subprocess.run(["cp", "-n", *map(str, (root / "var/cache/apt/archives").glob("*.deb")), str(debs)],
                       timeout=300, capture_output=True)
        assert b.install.returncode == 0, f"make install failed:\n{b.install.stdout[-4000:]}\n{b.install.stderr[-4000:]}"
        yield b
        b.stop_all()
    finally:
        _remove_box(root)


def _ids(box: Box, name: str) -> tuple[int, int]:
    for line in box.path("/etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return int(f[2]), int(f[3])
    raise AssertionError(f"no user {name} in the box")


def _members(box: Box, group: str) -> list[str]:
    for line in box.path("/etc/group").read_text().splitlines():
        f = line.split(":")
        if f[0] == group:
            return f[3].split(",") if f[3] else []
    return []


# ---------------------------------------------------------------------- what the install did
def test_install_installs_and_names_the_debian_packages_it_needs(box):
    out = box.install.stdout
    needed = next(l for l in out.splitlines() if "Debian packages needed:" in l).split(":", 2)[2].split()
    assert {"python3-venv", "espeak-ng", "sox", "sqlite3"} <= set(needed)
    for pkg in needed:
        assert box.path(f"/var/lib/dpkg/info/{pkg}.list").exists() or any(
            box.path("/var/lib/dpkg/info").glob(f"{pkg}:*.list")), f"{pkg} not installed"
    assert box.run("sox", "--version").returncode == 0


def test_the_service_user_exists_and_owns_the_serial_ports_group(box):
    uid, _gid = _ids(box, "gatewayd")
    assert uid < 1000   # a system user
    assert "gatewayd" in _members(box, "dialout")


def test_the_members_data_is_private(box):
    uid, gid = _ids(box, "gatewayd")
    data = box.path("/var/lib/gatewayd")
    st = data.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o750)
    db = data / "gatewayd.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o640 and db.stat().st_uid == uid
    conf = box.path("/etc/gatewayd/gatewayd.toml")
    assert (conf.stat().st_uid, conf.stat().st_gid, stat.S_IMODE(conf.stat().st_mode)) == (0, gid, 0o640)
    assert "change-me-to-a-long-random-string" not in conf.read_text()


def test_the_units_are_enabled_without_a_running_systemd(box):
    for target, units in ENABLED.items():
        for u in units:
            link = box.path(f"/etc/systemd/system/{target}/{u}")
            assert link.is_symlink(), f"{u} not enabled ({link} missing)"
    p = box.run("systemctl", "is-enabled", *(u for us in ENABLED.values() for u in us))
    assert p.stdout.split() == ["enabled"] * 4, p.stdout + p.stderr


def test_the_units_verify_and_are_hardened(box):
    units = [f"/etc/systemd/system/{u}" for u in SERVICES + ["gatewayd-purge.timer", "gatewayd-backup.timer"]]
    p = box.run("systemd-analyze", "verify", *units)
    assert p.returncode == 0, p.stderr
    assert [l for l in p.stderr.splitlines() if "gatewayd" in l] == []
    for u in SERVICES:
        p = box.run("systemd-analyze", "security", "--offline=yes", f"/etc/systemd/system/{u}")
        line = next(l for l in p.stdout.splitlines() if "Overall exposure level" in l)
        assert float(line.split(":", 1)[1].split()[0]) <= 2.5, line


def test_the_venv_is_small_and_gatewayd_is_on_path(box):
    venv = box.path("/opt/gatewayd/venv")
    size = int(subprocess.run(["du", "-s", "--block-size=1", str(venv)], capture_output=True, text=True,
                              check=True).stdout.split()[0]) / 1e6
    print(f"installed venv: {size:.1f} MB (target <= {VENV_TARGET_MB} MB)")
    assert size <= VENV_TARGET_MB
    assert not list(venv.glob("lib/python3*/site-packages/psycopg*"))
    p = box.run("gatewayd", "status", "--json")   # root calling it: runs as gatewayd, with the installed config
    assert p.returncode == 0, p.stderr
    assert "queue" in json.loads(p.stdout)


def test_the_checkout_is_left_as_it_was(box):
    src = box.path(SRC_IN_BOX)
    assert list(src.rglob("__pycache__")) == [] and list(src.rglob("*.egg-info")) == []


def test_the_end_of_the_install_says_how_to_log_in_and_where_the_page_is(box):
    out = box.install.stdout
    assert "gatewayd user add NAME --role admin" in out
    assert "listens on 127.0.0.1:8080" in out


# ---------------------------------------------------------------------- the box runs
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def running(box, tmp_path_factory):
    """`run` and `web` on emulated devices, as the gatewayd user, with the installed database."""
    installed = tomllib.loads(box.path("/etc/gatewayd/gatewayd.toml").read_text())
    port = _free_port()
    conf = box.path("/etc/gatewayd/emulated.toml")
    conf.write_text(f'''[database]
url = "{installed["database"]["url"]}"

[[emulated]]
name = "box-sms"
kind = "sms"

[[emulated]]
name = "box-voice"
kind = "voice"

[tts]
cache_dir = "/var/lib/gatewayd/audio"

[web]
listen = "127.0.0.1:{port}"
secret_key = "{installed["web"]["secret_key"]}"
''')
    _uid, gid = _ids(box, "gatewayd")
    os.chown(conf, 0, gid)
    conf.chmod(0o640)
    logs = tmp_path_factory.mktemp("box-logs")
    exe = "/opt/gatewayd/venv/bin/gatewayd"
    box.start(exe, "-c", "/etc/gatewayd/emulated.toml", "run", user="gatewayd", log=logs / "run.log")
    box.start(exe, "-c", "/etc/gatewayd/emulated.toml", "web", user="gatewayd", log=logs / "web.log")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    status = None
    while time.monotonic() < deadline:
        try:
            status, _ = _get(url + "/healthz")
        except OSError:
            status = None
        if status == 200:
            break
        time.sleep(1)
    assert status == 200, ((logs / "run.log").read_text()[-2000:] + "\n" + (logs / "web.log").read_text()[-2000:])
    return url


def test_run_and_web_start_on_emulated_devices(box, running):
    status, body = _get(running + "/healthz")
    report = json.loads(body)
    assert status == 200 and report["devices"]["box-sms"]["state"] == "up"
    status, body = _get(running + "/metrics")
    assert status == 200 and b'gatewayd_device_up{device="box-sms"' in body
    status, _ = _get(running + "/login")
    assert status == 200


def test_an_alert_goes_out_through_the_emulated_devices(box, running):
    g = ["/opt/gatewayd/venv/bin/gatewayd", "-c", "/etc/gatewayd/emulated.toml"]
    assert box.run(*g, "network", "add", "BIN Box", user="gatewayd").returncode == 0
    p = box.run(*g, "member", "add", "--network", "BIN Box", "--phone", "0470111222", user="gatewayd")
    assert p.returncode == 0, p.stderr
    p = box.run(*g, "alert", "send", "--network", "BIN Box", "--category", "urgent", "--text", "Test", user="gatewayd")
    assert p.returncode == 0, p.stderr
    alert = p.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        st = json.loads(box.run(*g, "alert", "status", alert, "--json", user="gatewayd").stdout)
        if set(st["messages"]) <= {"sent", "delivered"} and st["messages"]:
            break
        time.sleep(1)
    assert set(st["messages"]) <= {"sent", "delivered"}, st


def test_a_second_local_user_reads_nothing_after_backup_and_purge(box, running):
    """Under real file permissions, in the box: `nobody` is any other local account."""
    backup = box.path("/etc/systemd/system/gatewayd-backup.service").read_text()
    cmd = next(l for l in backup.splitlines() if l.startswith("ExecStart="))[len("ExecStart="):]
    cmd = cmd.replace("$$", "$").replace("%%", "%")
    assert cmd.startswith("/bin/sh -c '")
    p = box.run("/bin/sh", "-c", cmd[len("/bin/sh -c '"):-1], user="gatewayd")
    assert p.returncode == 0, p.stderr
    p = box.run("/opt/gatewayd/venv/bin/gatewayd", "-c", "/etc/gatewayd/gatewayd.toml", "purge", user="gatewayd")
    assert p.returncode == 0, p.stderr
    data = box.path("/var/lib/gatewayd")
    files = [p for p in data.rglob("*")]
    assert any(p.parent.name == "backups" and p.suffix == ".db" for p in files)
    open_to_others = [f"{p} {oct(p.stat().st_mode & 0o777)}" for p in [data, *files]
                      if not p.is_symlink() and p.stat().st_mode & 0o007]
    assert open_to_others == []
    for p in [data, *files, box.path("/etc/gatewayd/gatewayd.toml")]:
        inside = "/" + str(p.relative_to(box.root))
        probe = ["ls", inside] if p.is_dir() else ["head", "-c", "1", inside]
        assert box.run(*probe, user="nobody").returncode != 0, f"nobody can read {inside}"


def test_root_calling_gatewayd_where_the_service_user_cannot_write_gets_one_line(box):
    """`sudo gatewayd backup /root/x.db`: the command runs as gatewayd (root's files would lock the
    daemon out), which cannot write in /root. One line naming the file and the user, no traceback."""
    for cmd in ("gatewayd backup /root/members.db",
                "gatewayd network add 'BIN Export' && gatewayd member add --network 'BIN Export' "
                "--phone 0470123999 --name Export && gatewayd member export 0470123999 -o /root/anna.json"):
        r = box.run("bash", "-c", f"cd /root && {cmd}")
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        assert "cannot write it as user gatewayd" in r.stderr and "/root/" in r.stderr, r.stderr


def test_root_changes_the_config_with_gatewayd_on_path(box):
    """README: `gatewayd config-set` / `gatewayd secret-key`. /etc/gatewayd is root's (the service user
    only reads it), so root's calls of these work, and the file stays root:gatewayd 0640."""
    conf = box.path("/etc/gatewayd/gatewayd.toml")
    before = conf.stat()
    r = box.run("bash", "-c", "cd /root && gatewayd config-set web.trusted_proxy=127.0.0.1")
    assert r.returncode == 0, r.stderr
    assert 'trusted_proxy = "127.0.0.1"' in conf.read_text()
    after = conf.stat()
    assert (after.st_uid, after.st_gid, after.st_mode & 0o777) == (before.st_uid, before.st_gid, 0o640)
    assert box.run("bash", "-c", "gatewayd config-set 'web.trusted_proxy=\"\"'").returncode == 0
    r = box.run("bash", "-c", "gatewayd secret-key")
    assert r.returncode == 0 and "already a good key" in r.stdout, r.stderr
    # The service user itself cannot: one line saying so, no traceback.
    r = box.run("/opt/gatewayd/venv/bin/gatewayd", "-c", "/etc/gatewayd/gatewayd.toml", "config-set",
                "web.trusted_proxy=127.0.0.1", user="gatewayd")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "cannot write the config" in r.stderr, r.stderr
