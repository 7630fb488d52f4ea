"""The installed program's size on the SD card: scripts/install --prefix into a scratch
directory, then the venv measured as du does (what the card holds, bytecode included)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import Result

REPO = Path(__file__).resolve().parents[1]
TARGET_MB = 90.0


def venv_megabytes(venv: Path) -> float:
    out = subprocess.run(["du", "-s", "--block-size=1", str(venv)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[0]) / 1e6


def biggest(venv: Path, n: int = 6) -> list[tuple[float, str]]:
    site = next(venv.glob("lib/python3*/site-packages"))
    sizes = [(venv_megabytes(p), p.name) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")]
    return sorted(sizes, reverse=True)[:n]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gatewayd-size-") as tmp:
        p = subprocess.run(["bash", str(REPO / "scripts" / "install"), "--prefix", tmp, "--no-admin"],
                           capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
                           env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if p.returncode != 0:
            print(f"FAIL  the install did not finish:\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}")
            return 1
        venv = Path(tmp) / "opt" / "gatewayd" / "venv"
        size = venv_megabytes(venv)
        print("largest parts: " + ", ".join(f"{name} {mb:.1f} MB" for mb, name in biggest(venv)))
    r = Result("installed venv (SQLite box, no extras)", size, "MB", f"<= {TARGET_MB:.0f} MB", size <= TARGET_MB)
    print(r.line())
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
