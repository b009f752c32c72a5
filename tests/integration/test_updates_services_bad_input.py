"""Bad input to the updates and services checks, on the test machine itself.

No container needed: the failures are the point.  A missing apt, an apt
that fails, unreadable logs and no system bus must each be an `unknown`
row that says why, never a crash and never a silent ok; configuration
errors name file:line:column.
"""
import re
import os
import subprocess

from conftest import assert_no_sanitizer_errors, binary


def write_config(tmp_path, checks):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"""\
host: bad-input
state_dir: {tmp_path}/state
server:
  url: http://127.0.0.1:9
  allow_plain_http: true
  token: agent-token-0123456789abcdef
checks:
  disk:
    enabled: false
{checks}""")
    return cfg


def dry_run(cfg, env=None):
    full = dict(os.environ)
    full.update(env or {})
    proc = subprocess.run([binary("tocsin-agent"), "--config", str(cfg), "--dry-run"],
                          capture_output=True, text=True, timeout=120, env=full)
    assert_no_sanitizer_errors(proc.stderr, "tocsin-agent")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {}
    for line in proc.stdout.splitlines()[1:]:
        if line.startswith(" "):
            continue  # a result's metrics, on the line below it
        check, item, state, summary = line.split(None, 3)
        rows[(check, item)] = (state, summary)
    return rows


def test_no_system_bus_is_unknown_with_the_reason(tmp_path):
    cfg = write_config(tmp_path, "  updates:\n    enabled: false\n")
    rows = dry_run(cfg, {"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"})
    assert rows[("services", "failed")] == (
        "unknown", f"cannot connect to the system bus (unix:path={tmp_path}/no-bus): "
        "No such file or directory")
    assert len([k for k in rows if k[0] == "services"]) == 1


def test_missing_apt_and_apt_config(tmp_path):
    cfg = write_config(tmp_path, f"""\
  services:
    enabled: false
  updates:
    apt_get: {tmp_path}/missing/apt-get
    apt_config: {tmp_path}/missing/apt-config
""")
    rows = dry_run(cfg)
    why = f"cannot run {tmp_path}/missing/apt-get: No such file or directory"
    assert rows[("updates", "pending")] == ("unknown", why)
    assert rows[("updates", "security")] == ("unknown", why)
    assert rows[("updates", "unattended")] == (
        "unknown", f"cannot run {tmp_path}/missing/apt-config: No such file or directory")


def test_apt_that_fails_or_hangs(tmp_path):
    failing = tmp_path / "apt-get"
    failing.write_text("#!/bin/sh\necho 'E: Could not open lock file' >&2\nexit 100\n")
    failing.chmod(0o755)
    hanging = tmp_path / "apt-config"
    hanging.write_text("#!/bin/sh\nsleep 60\n")
    hanging.chmod(0o755)
    cfg = write_config(tmp_path, f"""\
  services:
    enabled: false
  updates:
    apt_get: {failing}
    apt_config: {hanging}
    apt_timeout: 1s
""")
    rows = dry_run(cfg)
    assert rows[("updates", "pending")] == (
        "unknown", f"{failing} exited with status 100: E: Could not open lock file")
    assert rows[("updates", "unattended")] == ("unknown", f"{hanging} timed out after 1 s")


def test_unreadable_logs_and_lists(tmp_path):
    cfg = write_config(tmp_path, f"""\
  services:
    enabled: false
  updates:
    apt_get: /bin/true
    history_log: {tmp_path}
    lists_dir: {tmp_path}/no-lists
    reboot_required_file: {tmp_path}/reboot-required
""")
    (tmp_path / "reboot-required").write_text("*** System restart required ***\n")
    rows = dry_run(cfg)
    assert rows[("updates", "upgrades")] == (
        "unknown", f"cannot read {tmp_path}: Is a directory")
    assert rows[("updates", "lists")] == (
        "unknown", f"cannot read {tmp_path}/no-lists: No such file or directory")
    # an apt that prints nothing: no updates, and the lists still matter
    assert rows[("updates", "pending")][0] == "ok"
    # the file was written a moment ago: "0 s", or "1 s" on a slow machine
    state, summary = rows[("updates", "reboot")]
    assert state == "warning"
    assert re.fullmatch(r"reboot required for [0-9] s", summary), summary


def test_config_errors_name_file_line_column(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("""\
role: primary
server:
  url: https://127.0.0.1:9
checks:
  updates:
    apt_interval: 2s
    apt_get: apt-get
    mode: yolo
    unattended_central: panic
    security_critical: lots
  services:
    timers: [backup.service]
    journal_lines: 500
    wach: [x.service]
""")
    proc = subprocess.run([binary("tocsin-agent"), "--config", str(cfg), "--check-config"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    err = proc.stderr
    assert f"{cfg}:1:7: role: 'primary' is not one of: decentral, central" in err
    assert f"{cfg}:6:19: checks.updates.apt_interval: apt_interval must be at least 5s" in err
    assert f"{cfg}:7:14: checks.updates.apt_get: 'apt-get' is not an absolute path" in err
    assert f"{cfg}:8:11: checks.updates.mode: 'yolo' is not one of: dist-upgrade, upgrade" in err
    assert f"{cfg}:9:25: checks.updates.unattended_central: 'panic' is not one of" in err
    assert f"{cfg}:10:24: checks.updates.security_critical:" in err
    assert f"{cfg}:12:13: checks.services.timers: 'backup.service' does not name a .timer unit" in err
    assert f"{cfg}:13:20: checks.services.journal_lines:" in err
    assert f"{cfg}:14:5: checks.services.wach: unknown key 'wach'" in err
    assert "9 configuration errors" in err
