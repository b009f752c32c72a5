"""A disk alert travels from the real agent to one deduplicated ticket.

A small tmpfs is mounted for the test and filled with real files; the real
agent checks it and delivers to the real server.
"""
import os
import subprocess

import pytest

from conftest import TECH_TOKEN, run_agent, run_cli, write_agent_config

MiB = 1024 * 1024


@pytest.fixture
def tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "vol"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755",
                    "tocsin-test", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt, name, mib):
    with open(mnt / name, "wb") as fp:
        fp.write(b"\xa5" * (mib * MiB))
        fp.flush()
        os.fsync(fp.fileno())


def test_disk_alert_becomes_one_ticket_then_resolves(server, tmpfs, tmp_path):
    config = write_agent_config(
        tmp_path / "agent.yaml", server.url, host="fileserver",
        checks=f"""\
  disk:
    discover: false
    mounts:
      - path: {tmpfs}
        warning: 50%
        critical: 90%
""")
    # 5 of 8 MiB: above the warning threshold
    fill(tmpfs, "a.bin", 5)
    run1 = run_agent(config, "--once")
    assert run1.returncode == 0, run1.stderr
    assert "warning" in run1.stdout and str(tmpfs) in run1.stdout
    assert "delivered 1 events" in run1.stdout

    tickets = server.tickets("open")
    assert len(tickets) == 1
    t = tickets[0]
    assert (t["host"], t["check"], t["item"]) == ("fileserver", "disk", str(tmpfs))
    assert t["state"] == "warning"
    assert t["occurrence_count"] == 1
    assert "62.5% used" in t["summary"]

    # fill more: the same ticket, now critical, two occurrences
    fill(tmpfs, "b.bin", 3)
    run2 = run_agent(config, "--once")
    assert run2.returncode == 0, run2.stderr
    tickets = server.tickets("all")
    assert len(tickets) == 1
    assert tickets[0]["id"] == t["id"]
    assert tickets[0]["occurrence_count"] == 2
    assert tickets[0]["state"] == "critical"
    assert tickets[0]["worst_state"] == "critical"

    # delete the files: the ticket is resolved, with a journal line
    os.unlink(tmpfs / "a.bin")
    os.unlink(tmpfs / "b.bin")
    run3 = run_agent(config, "--once")
    assert run3.returncode == 0, run3.stderr
    assert server.tickets("open") == []
    detail = server.ticket(t["id"])
    assert detail["status"] == "resolved"
    assert detail["resolved_at"] is not None
    # warning -> critical also raised the urgency (the helpdesk journals it)
    assert [j["action"] for j in detail["journal"]] == ["opened", "state", "urgency",
                                                        "resolved"]
    assert len(detail["occurrences"]) == 3  # two problems and the recovery

    # the CLI shows the same ticket to a technician
    cli = run_cli("tickets", "--state", "all", env={"TOCSIN_URL": server.url,
                                                    "TOCSIN_TOKEN": TECH_TOKEN})
    assert cli.returncode == 0, cli.stderr
    assert "fileserver" in cli.stdout and "resolved" in cli.stdout
    cli = run_cli("--url", server.url, "--token", TECH_TOKEN, "ticket", str(t["id"]))
    assert cli.returncode == 0, cli.stderr
    assert f"Ticket #{t['id']}: disk {tmpfs} on fileserver" in cli.stdout
    assert "resolved" in cli.stdout


def test_pseudo_filesystems_are_skipped_unless_named(server, tmpfs, tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", server.url,
                                checks="  disk:\n    warning: 0%\n")
    dry = run_agent(config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    # the tmpfs is not discovered: it holds no data worth a ticket
    assert str(tmpfs) not in dry.stdout
    assert server.tickets("all") == []  # dry run delivers nothing


def test_agent_reports_unreachable_collector(tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", "http://127.0.0.1:9",
                                checks="  disk:\n    discover: false\n    mounts: [/]\n")
    run = run_agent(config, "--once")
    assert run.returncode != 0
    assert "not delivered" in run.stderr
    assert "cannot reach the collector at http://127.0.0.1:9/api/v1/events" in run.stderr
    # the results are still printed, so the user sees what would have gone
    assert "disk" in run.stdout
