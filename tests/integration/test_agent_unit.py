"""The shipped unit file packaging/tocsin-agent.service: systemd accepts
it (systemd-analyze verify) and its sandbox stays tight (systemd-analyze
security --offline, which reads the file without a running systemd).
The ExecStart path is pointed at the built agent so verify can check it.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, binary

UNIT = ROOT / "packaging" / "tocsin-agent.service"


@pytest.fixture
def unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    copy = tmp_path / "tocsin-agent.service"
    copy.write_text(UNIT.read_text().replace("/usr/sbin/tocsin-agent",
                                           str(Path(binary("tocsin-agent")).resolve())))
    return copy


def test_unit_verifies(unit):
    r = subprocess.run(["systemd-analyze", "verify", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tocsin-agent.service" not in r.stderr, r.stderr


def test_unit_is_hardened(unit):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"Overall exposure level for tocsin-agent\.service: ([\d.]+)", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) <= 2.0, r.stdout
    text = UNIT.read_text()
    for line in ("Type=notify", "User=tocsin-agent", "StateDirectory=tocsin-agent",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "SystemCallFilter=@system-service", "WatchdogSec="):
        assert line in text, line


def test_unit_matches_the_package():
    # packaging/build-debs.sh installs the agent as /usr/sbin/tocsin-agent
    assert "ExecStart=/usr/sbin/tocsin-agent " in UNIT.read_text()
    assert "/usr/sbin/$bin" in (ROOT / "packaging" / "build-debs.sh").read_text()
