"""What a box installs: the package builds cleanly, carries no driver or test library it
does not need, and installs on 32-bit Raspberry Pi OS (armv7) from wheels plus the few
builds Debian packages (scripts/armhf-debian-packages)."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
ARMV7 = {"platform_machine": "armv7l", "sys_platform": "linux", "platform_system": "Linux",
         "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
         "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
# Pure-Python projects that publish a source release only (no wheel for any platform):
# pip builds them anywhere without a compiler.
SOURCE_ONLY_PURE_PYTHON = {"sdnotify"}

pytestmark = pytest.mark.timeout(600)


def _names(reqs: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in reqs}


def test_the_box_carries_neither_the_postgres_driver_nor_test_libraries():
    runtime = _names(PROJECT["dependencies"])
    assert not runtime & {"psycopg", "psycopg-binary", "python-gsmmodem-new", "pytest"}
    assert "phonenumberslite" in runtime and "phonenumbers" not in runtime
    assert "psycopg" in _names(PROJECT["optional-dependencies"]["postgres"])
    assert "python-gsmmodem-new" in _names(PROJECT["optional-dependencies"]["test"])


def test_the_package_builds_without_warnings(tmp_path):
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path / "w"),
                        str(REPO)], capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                            **_pip_env()})
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    warnings = [l for l in out.splitlines() if re.search(r"deprecat|warning", l, re.I)
                and "byte-compiling is disabled" not in l]
    assert warnings == [], "\n".join(warnings)


def _pip_env() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if k.startswith("PIP_")}


def _debian_provided() -> dict[str, str]:
    rows = [l.split() for l in (REPO / "scripts" / "armhf-debian-packages").read_text().splitlines()
            if l.strip() and not l.startswith("#")]
    return {dist.lower(): deb for deb, dist in rows}


def _armv7_requirements(reqs: list[str]) -> list[str]:
    """REQS as pip on an armv7 box sees them (markers evaluated there, not here)."""
    out = []
    for r in reqs:
        req = Requirement(r)
        if req.marker is not None and not Marker(str(req.marker)).evaluate(ARMV7):
            continue
        req.marker = None
        out.append(str(req))
    return out


def _dry_run_armv7(reqs: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
         "--platform", "linux_armv7l", "--platform", "manylinux2014_armv7l", "--platform", "manylinux_2_31_armv7l",
         "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
         "--target", str(tmp_path / "t"), *reqs],
        capture_output=True, text=True, timeout=500)


@pytest.mark.parametrize("extras", [(), ("postgres",)])
def test_armv7_installs_from_wheels_and_debians_builds(tmp_path, extras):
    reqs = list(PROJECT["dependencies"])
    for e in extras:
        reqs += PROJECT["optional-dependencies"][e]
    debian = _debian_provided()
    # What Debian builds and what builds anywhere are left out; all the rest must have a wheel.
    wanted = [r for r in _armv7_requirements(reqs)
              if Requirement(r).name.lower() not in debian
              and Requirement(r).name.lower() not in SOURCE_ONLY_PURE_PYTHON]
    p = _dry_run_armv7(wanted, tmp_path)
    assert p.returncode == 0, "no armv7 wheel:\n" + "\n".join(l for l in p.stderr.splitlines() if "ERROR" in l)
    would = p.stdout.split("Would install", 1)[1].lower()
    for dist in debian:   # nothing else pulls in what Debian has to provide
        assert f" {dist}-" not in would.replace("_", "-"), f"{dist} is pulled in by another dependency"


def test_the_dry_run_does_catch_a_dependency_without_an_armv7_wheel(tmp_path):
    """Guards the test above: argon2-cffi-bindings has no armv7 wheel, so asking for it fails."""
    assert _dry_run_armv7(["argon2-cffi-bindings"], tmp_path).returncode != 0
