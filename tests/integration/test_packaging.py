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


def _armv7_dry_run_cmd(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
            "--platform", "linux_armv7l", "--platform", "manylinux2014_armv7l", "--platform", "manylinux_2_31_armv7l",
            "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--target", str(tmp_path / "t")]


def _dry_run_armv7(reqs: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_armv7_dry_run_cmd(tmp_path) + reqs, capture_output=True, text=True, timeout=500)


def _resolved(reqs: list[str], tmp_path: Path) -> dict[str, str]:
    """Every distribution REQS pull in (name -> version), resolved by pip here."""
    import json
    report = tmp_path / "report.json"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), *reqs], capture_output=True, text=True, timeout=500)
    assert p.returncode == 0, p.stderr[-2000:]
    items = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in items}


@pytest.mark.parametrize("extras", [(), ("postgres",)])
def test_armv7_installs_from_wheels_and_debians_packages(tmp_path, extras):
    """Every distribution the box needs, except those scripts/armhf-debian-packages covers and
    pure-Python source releases, has an armv7 wheel (checked pinned, one by one, by pip)."""
    reqs = list(PROJECT["dependencies"])
    for e in extras:
        reqs += PROJECT["optional-dependencies"][e]
    covered = set(_debian_provided()) | SOURCE_ONLY_PURE_PYTHON
    # What Debian provides comes with its own dependencies (argon2 with cffi, not the bindings).
    top = [r for r in _armv7_requirements(reqs) if Requirement(r).name.lower() not in covered]
    closure = _resolved(top, tmp_path)
    wanted = [f"{name}=={version}" for name, version in sorted(closure.items()) if name not in covered]
    p = subprocess.run(_armv7_dry_run_cmd(tmp_path) + ["--no-deps", *wanted], capture_output=True, text=True,
                       timeout=500)
    assert p.returncode == 0, "no armv7 wheel:\n" + "\n".join(l for l in p.stderr.splitlines() if "ERROR" in l)


def test_the_dry_run_does_catch_a_dependency_without_an_armv7_wheel(tmp_path):
    """Guards the test above: argon2-cffi-bindings has no armv7 wheel, so asking for it fails."""
    assert _dry_run_armv7(["argon2-cffi-bindings"], tmp_path).returncode != 0
