"""Tests and benchmarks address only this machine: loopback (127.0.0.0/8, ::1), never any
other address, not even to imitate an unreachable host (a closed loopback port or a
listener that never answers does that). This scan fails on any other IP literal."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "benchmarks")
SUFFIXES = {".py", ".sh", ".cfg", ".toml", ".ini", ".conf", ".json", ".yaml", ".yml", ".md"}
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def off_machine_addresses(text: str) -> list[str]:
    """IP literals in ``text`` that are neither loopback nor invalid look-alikes."""
    found = []
    for candidate in IPV4.findall(text) + IPV6.findall(text):
        if ":" in candidate and (
            len([group for group in candidate.split(":") if group]) < 2
            or ("::" not in candidate and candidate.count(":") != 7)
        ):
            continue  # slices such as [::6], times such as 12:30:00: not addresses
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if not address.is_loopback:
            found.append(candidate)
    return found


def test_the_scanner_tells_loopback_from_other_addresses() -> None:
    outside = ".".join(["10", "255", "255", "1"])  # built here, so the file itself stays clean
    assert off_machine_addresses(f"host={outside}:3306") == [outside]
    documentation = ":".join(["2001", "db8", "", "1"])
    assert off_machine_addresses(f"[{documentation}]:22") == [documentation]
    assert off_machine_addresses("127.0.0.1:1 127.3.4.5 [::1]:22 12:30:00 v1.2.3 a[::6]") == []


def test_tests_and_benchmarks_only_address_loopback() -> None:
    offenders = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for address in off_machine_addresses(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {address}")
    assert offenders == [], (
        "tests and benchmarks may address only loopback (127.0.0.0/8, ::1); imitate an "
        "unreachable host with a closed loopback port or a silent loopback listener "
        "(tests/conftest.py: closed_port, silent_server):\n" + "\n".join(offenders)
    )
