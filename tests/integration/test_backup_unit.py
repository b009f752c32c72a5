"""The backup check asks a real systemd about the backup job's last run.

systemd runs as PID 1 of a container (systemd_container.py); the real
agent on the host talks to its system bus over sd-bus, through
/proc/<pid 1>/root/run/dbus/system_bus_socket.
"""
import pytest

from checkutil import agent_config, rows, run_check, tmpfs, write_file
from systemd_container import Container, unavailable_reason

CONTAINER_UNITS = {
    "backup-ok.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    "backup-bad.service": "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n",
    "backup-never.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
    "backup-bad.timer": "[Timer]\nOnCalendar=*-*-* 03:00\nUnit=backup-bad.service\n",
    "backup-ok.timer": "[Timer]\nOnCalendar=*-*-* 04:00\nUnit=backup-ok.service\n",
}


@pytest.fixture(scope="module")
def systemd_container(tmp_path_factory):
    why = unavailable_reason()
    if why:
        pytest.skip(why)
    with Container(tmp_path_factory.mktemp("backup-unit")) as c:
        c.unpack()
        for name, text in CONTAINER_UNITS.items():
            c.write(f"/etc/systemd/system/{name}", text)
        c.boot()
        c.bus_address = f"unix:path=/proc/{c.leader}/root/run/dbus/system_bus_socket"
        yield c


@pytest.fixture(scope="module")
def jobs_ran(systemd_container):
    c = systemd_container
    # the active timer keeps its service loaded, and so its last run known
    c.run("systemctl", "start", "backup-ok.timer")
    c.run("systemctl", "start", "backup-ok.service")
    failed = c.run("systemctl", "start", "backup-bad.service", check=False)
    assert failed.returncode != 0
    assert c.run("systemctl", "is-failed", "backup-bad.service",
                 check=False).stdout.strip() == "failed"
    return c


def test_last_run_of_the_backup_unit(jobs_ran, tmp_path):
    with tmpfs(tmp_path / "bk", "8m") as bk:
        write_file(bk / "a.tar", 1000, touch="1 hour ago")
        targets = "".join(
            f"      - {{name: {name}, path: \"{bk}/*.tar\", unit: {unit}}}\n"
            for name, unit in (("ok", "backup-ok.timer"),
                               ("bad", "backup-bad.service"),
                               ("timer", "backup-bad.timer"),
                               ("never", "backup-never.service"),
                               ("missing", "no-such-backup.service")))
        config = agent_config(tmp_path / "agent.yaml",
                              "  heartbeat: {enabled: false}\n"
                              f"  backup:\n    targets:\n{targets}")
        run = run_check(config, "backup",
                        env={"DBUS_SYSTEM_BUS_ADDRESS": jobs_ran.bus_address})
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert r["ok"][1] == "ok"
    assert "last run of backup-ok.service succeeded" in r["ok"][2]
    # the failed job makes the target critical and leads its summary
    assert r["bad"][1] == "critical"
    assert r["bad"][2].startswith("bad: last run of backup-bad.service failed ")
    assert r["bad"][2].split("; ")[0].endswith(": exit-code, status 3"), r["bad"][2]
    # a timer is followed to the service it starts
    assert r["timer"][1] == "critical"
    assert r["timer"][2].startswith("timer: last run of backup-bad.service failed")
    assert r["never"][1] == "ok"
    assert "systemd has no record of a run of backup-never.service (inactive)" in r["never"][2]
    assert r["missing"][1] == "unknown"
    assert r["missing"][2].startswith("missing: unit no-such-backup.service is not-found")
