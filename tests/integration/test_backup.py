"""The backup check on a real tmpfs with real files and `touch -d` times.

The systemd unit part runs against a real systemd in a container in
test_backup_unit.py; here the unit is only asked for without a bus.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from checkutil import (MiB, agent_config, check_config, metrics_of, rows, run_check,
                       tmpfs, write_file)
from conftest import binary


def daily_backups(d, sizes, newest_age_h, name="db"):
    """One file per day, newest first in sizes, the newest newest_age_h old."""
    for i, size in enumerate(sizes):
        write_file(d / f"{name}-{i}.sql.gz", size,
                   touch=f"{newest_age_h + 24 * i} hours ago")


def backup_config(tmp_path, targets, extra=""):
    return agent_config(tmp_path / "agent.yaml",
                        f"  heartbeat: {{enabled: false}}\n"
                        f"  backup:\n{extra}    targets:\n{targets}")


def test_fresh_old_small_and_empty_backups(tmp_path):
    with tmpfs(tmp_path / "bk", "32m") as bk:
        for name in ("fresh", "old", "late", "small", "empty", "dirs"):
            (bk / name).mkdir()
        daily_backups(bk / "fresh", [MiB, MiB, MiB + 5000, MiB - 5000], 2)
        daily_backups(bk / "old", [MiB, MiB, MiB], 30)
        daily_backups(bk / "late", [MiB, MiB], 20)
        daily_backups(bk / "small", [12 * 1024, MiB, MiB, 2 * MiB], 3)
        daily_backups(bk / "empty", [0, MiB], 1)
        for i in range(2):  # directory backups (rsnapshot style): age only
            (bk / "dirs" / f"daily.{i}").mkdir()
            subprocess.run(["touch", "-d", f"{5 + 24 * i} hours ago",
                            str(bk / "dirs" / f"daily.{i}")], check=True)
        config = backup_config(tmp_path, f"""\
      - {{name: fresh, path: "{bk}/fresh/db-*.sql.gz"}}
      - {{name: old, path: "{bk}/old/db-*.sql.gz"}}
      - {{name: late, path: "{bk}/late/db-*.sql.gz", warn_age: 12h}}
      - {{name: small, path: "{bk}/small/*.sql.gz"}}
      - {{name: empty, path: "{bk}/empty/*.sql.gz"}}
      - {{name: dirs, path: "{bk}/dirs/daily.*"}}
""")
        run = run_check(config, "backup")
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert r["fresh"][1] == "ok"
    assert r["fresh"][2].startswith(
        "fresh: newest backup db-0.sql.gz is 2 h old; 1.0 MiB, median 1.0 MiB of the 3 before; ")
    m = metrics_of(run.stdout, "fresh")
    assert m["backups"] == "4" and m["newest_size_bytes"] == str(MiB)
    assert 7100 < int(m["newest_age_s"]) < 7300

    assert r["old"][1] == "critical"
    assert r["old"][2].startswith(
        "old: newest backup db-0.sql.gz is 30 h old (critical past 26 h); ")
    assert r["late"][1] == "warning"
    assert "newest backup db-0.sql.gz is 20 h old (warning past 12 h)" in r["late"][2]
    assert r["small"][1] == "warning"
    assert ("newest backup db-0.sql.gz is 12.0 KiB, 1% of the median 1.0 MiB "
            "of the 3 before (warning below 50%)") in r["small"][2]
    assert r["empty"][1] == "critical"
    assert r["empty"][2].startswith("empty: newest backup db-0.sql.gz is empty")
    assert r["dirs"][1] == "ok"
    assert r["dirs"][2].startswith("dirs: newest backup daily.0 is 5 h old; ")


def test_missing_directory_no_match_unreadable_directory_and_file(tmp_path):
    # pytest's tmp_path is private to root: this test's files must be
    # reachable for the unprivileged user the agent runs as
    tmp_path = Path(tempfile.mkdtemp(prefix="tocsin-backup-"))
    tmp_path.chmod(0o755)
    with tmpfs(tmp_path / "bk", "8m") as bk:
        (bk / "empty").mkdir()
        locked = bk / "locked"
        locked.mkdir(mode=0o700)
        write_file(locked / "x.tar", 1000, touch="1 hour ago")
        # names can be listed, but the files in it not looked at
        nosearch = bk / "nosearch"
        nosearch.mkdir()
        write_file(nosearch / "y.tar", 1000, touch="1 hour ago")
        nosearch.chmod(0o744)
        # one host's backups readable, another's not: the readable ones
        # are still judged (glob's GLOB_ERR made the whole target unknown)
        partial = bk / "partial"
        (partial / "web").mkdir(parents=True)
        write_file(partial / "web" / "w.tar", 1000, touch="1 hour ago")
        (partial / "db").mkdir(mode=0o700)
        write_file(partial / "db" / "d.tar", 1000, touch="1 hour ago")
        state = tmp_path / "state"
        state.mkdir(mode=0o777)
        config = backup_config(tmp_path, f"""\
      - {{name: unmounted, path: "{bk}/nas/*.tar"}}
      - {{name: nomatch, path: "{bk}/empty/*.tar"}}
      - {{name: locked, path: "{locked}/*.tar"}}
      - {{name: nosearch, path: "{nosearch}/*.tar"}}
      - {{name: partial, path: "{partial}/*/*.tar"}}
""")
        os.chmod(config, 0o644)
        # and so must the binary, wherever the checkout lives
        agent = shutil.copy(binary("tocsin-agent"), tmp_path / "tocsin-agent")
        # as an unprivileged user, the 0700 directory cannot be read
        run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                              "--clear-groups", str(agent),
                              "--config", str(config), "check", "backup"],
                             capture_output=True, text=True, timeout=60)
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert r["unmounted"][1:] == ("critical",
                                  f"unmounted: directory {bk}/nas does not exist")
    assert r["nomatch"][1] == "critical"
    assert r["nomatch"][2].startswith(f"nomatch: no backup matches {bk}/empty/*.tar")
    assert r["locked"][1] == "unknown"
    assert r["locked"][2].startswith(f"locked: cannot read {locked}: Permission denied")
    assert r["nosearch"][1] == "unknown"
    assert r["nosearch"][2].startswith(
        f"nosearch: cannot read {nosearch}/y.tar: Permission denied")
    assert r["partial"][1] == "unknown"
    assert r["partial"][2].startswith(
        f"partial: cannot read {partial}/db: Permission denied; "
        "newest backup w.tar is 1 h old"), r["partial"][2]


def test_the_number_of_matches_is_capped(tmp_path):
    """A pattern that matches without end (a backup directory nobody
    prunes) is looked at up to max_matches, and the summary says so."""
    with tmpfs(tmp_path / "bk", "8m") as bk:
        for i in range(12):
            write_file(bk / f"b{i:02}.tar", 100, touch=f"{i + 1} hours ago")
        config = backup_config(tmp_path, f"""\
      - {{name: capped, path: "{bk}/*.tar", max_matches: 5}}
      - {{name: all, path: "{bk}/*.tar"}}
""")
        run = run_check(config, "backup")
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert r["capped"][1] == "warning"
    assert r["capped"][2].startswith(
        f"capped: stopped looking after 5 matches of {bk}/*.tar (max_matches 5): "
        "the newest may be among the rest"), r["capped"][2]
    assert metrics_of(run.stdout, "capped")["backups"] == "5"
    assert r["all"][1] == "ok"
    assert metrics_of(run.stdout, "all")["backups"] == "12"
    assert "newest backup b00.tar is 1 h old" in r["all"][2]


def test_unit_without_a_system_bus_is_unknown(tmp_path):
    with tmpfs(tmp_path / "bk", "8m") as bk:
        write_file(bk / "a.tar", 1000, touch="1 hour ago")
        config = backup_config(tmp_path, f"""\
      - {{name: job, path: "{bk}/*.tar", unit: backup.service}}
""")
        run = run_check(config, "backup", env={
            "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus-here"})
    assert run.returncode == 0, run.stderr
    state, summary = rows(run.stdout)["job"][1:]
    assert state == "unknown"
    assert summary.startswith("job: cannot ask systemd about backup.service: "
                              "cannot connect to the system bus "
                              f"(unix:path={tmp_path}/no-bus-here): "
                              "No such file or directory"), summary
    # the rest of the target is still looked at
    assert "newest backup a.tar is 1 h old" in summary


def test_backup_volume_fill_prediction(tmp_path):
    """The backup volume fills by one 2 MiB backup every 10 minutes of
    agent time (the documented TOCSIN_AGENT_TEST_NOW hook); each run is a
    new agent process that reads the history from its state database."""
    t0 = int(time.time()) - 3 * 86400
    with tmpfs(tmp_path / "bk", "64m") as bk:
        config = backup_config(tmp_path, f"""\
      - name: nightly
        path: "{bk}/*.tar"
        max_age: 1h
        predict_short_window: 1h
        predict_long_window: 4h
        predict_warning: 12h
        predict_critical: 1h
""")
        states = []
        for i in range(20):
            now = t0 + i * 600
            write_file(bk / f"b{i:02}.tar", 2 * MiB, touch=f"@{now - 60}")
            run = run_check(config, "backup", env={"TOCSIN_AGENT_TEST_NOW": str(now)})
            assert run.returncode == 0, run.stderr
            states.append(rows(run.stdout)["nightly"][1:])
    assert all(s == "ok" for s, _ in states[:15]), states
    state, summary = states[-1]
    assert state == "warning"
    assert re.match(rf"nightly: backup volume {bk} full in ~\d+ (h|min) at 2[89]\d MiB/day "
                    r"\(warning within 12 h\), [\d.]+ MiB free; newest backup b19.tar is 60 s old",
                    summary), summary


def test_config_errors_name_file_line_column(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("server:\n  url: https://127.0.0.1:9\n  token: t\n"
                   "checks:\n"
                   "  backup:\n"
                   "    max_age: 2h\n"
                   "    warn_age: 3h\n"
                   "    targets:\n"
                   "      - path: relative/*.tar\n"
                   "      - path: /srv/a/*.tar\n"
                   "        unit: 'backup; rm -rf /'\n"
                   "      - path: /srv/b/*.tar\n"
                   "        min_size_ratio: 2\n"
                   "      - name: dup\n"
                   "        path: /srv/c/*\n"
                   "      - name: dup\n"
                   "        path: /srv/d/*\n"
                   "      - name: nopath\n")
    r = check_config(cfg)
    assert r.returncode == 2
    err = r.stderr
    assert f"{cfg}:6:5: checks.backup: warn_age must be shorter than max_age" in err
    assert f"{cfg}:9:15: checks.backup.targets[0].path: path 'relative/*.tar' is not absolute" in err
    assert (f"{cfg}:11:15: checks.backup.targets[1].unit: 'backup; rm -rf /' is not a "
            "systemd unit name ending in .service or .timer") in err
    assert f"{cfg}:13:25: checks.backup.targets[2].min_size_ratio: 2 is out of range 0..1" in err
    assert f"{cfg}:16:9: checks.backup.targets[4]: a backup target named 'dup' already exists" in err
    assert f"{cfg}:18:9: checks.backup.targets[5]: a backup target needs a path" in err


def test_enabled_without_targets_is_not_silent(tmp_path):
    config = backup_config(tmp_path, "      []\n")
    run = run_check(config, "backup")
    assert run.returncode == 0, run.stderr
    assert rows(run.stdout)["targets"][1:] == (
        "unknown", "the backup check is enabled but has no targets (checks.backup.targets)")


if not hasattr(os, "geteuid") or os.geteuid() != 0:
    pytestmark = pytest.mark.skip("mounting a tmpfs and setpriv need root (CI runs as root)")
