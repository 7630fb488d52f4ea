"""The set-up files for USB modems (issue 12): the installer brings usb-modeswitch, and the udev
template gives every port of a known modem vendor a stable name and keeps ModemManager away."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "systemd" / "99-gatewayd-modems.rules.example"
# udev rule syntax: comma-separated KEY[{attr}] OP "value" (man 7 udev).
PAIR = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
KEYS = {"ACTION", "SUBSYSTEM", "ENV", "ATTRS", "GOTO", "LABEL", "GROUP", "MODE", "SYMLINK"}


def parse_rule(line: str) -> list[tuple[str, str, str]]:
    """KEY OP "value" pairs; AssertionError when anything on the line is not one."""
    pairs, pos = [], 0
    while pos < len(line.rstrip()):
        m = PAIR.match(line, pos)
        assert m, f"not udev syntax at column {pos}: {line!r}"
        pairs.append(m.groups())
        pos = m.end()
    return pairs


def rules() -> list[list[tuple[str, str, str]]]:
    return [parse_rule(ln) for ln in RULES.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_every_rule_line_is_udev_syntax_with_known_keys():
    for rule in rules():
        assert rule and all(k.split("{")[0] in KEYS for k, _, _ in rule), rule


def test_gotos_land_on_labels():
    flat = [p for r in rules() for p in r]
    labels = {v for k, _, v in flat if k == "LABEL"}
    assert {v for k, _, v in flat if k == "GOTO"} <= labels


def test_known_vendors_get_a_stable_name_and_no_modemmanager():
    flat = [p for r in rules() for p in r]
    vendors = next(v for k, op, v in flat if k == "ENV{ID_VENDOR_ID}" and op == "==").split("|")
    assert {"12d1", "2c7c", "1e0e", "19d2"} <= set(vendors)        # Huawei, Quectel, SIMCom, ZTE
    symlink = next(v for k, _, v in flat if k == "SYMLINK")
    assert "$env{ID_SERIAL_SHORT}" in symlink and "$env{ID_USB_INTERFACE_NUM}" in symlink
    assert ("ENV{ID_MM_DEVICE_IGNORE}", "=", "1") in flat


def test_installer_installs_usb_modeswitch():
    text = (REPO / "scripts" / "install").read_text()
    # The installer's package list is one bash array; every box gets it (sticks that first show up as
    # a CD-ROM need usb-modeswitch before any AT port exists).
    listed = re.search(r"^pkgs=\((.*)\)$", text, re.M)
    assert listed and "usb-modeswitch" in shlex.split(listed.group(1))
