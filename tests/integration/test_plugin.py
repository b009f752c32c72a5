"""The plugin check with real plugin scripts run by the real agent.

Scripts that sleep, flood, exit 3 and 42, leave children behind and print
perfdata; children are asserted dead afterwards through /proc.
"""
import json
import re
import signal
import sqlite3
import subprocess
import time

import pytest

from checkutil import (agent_config, agent_daemon, check_config, metrics_of, pid_dead,
                       rows, run_check)
from conftest import run_agent, wait_for, write_agent_config


def script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def plugins_config(tmp_path, entries, extra=""):
    items = "".join(f"      - {e}\n" for e in entries)
    return agent_config(tmp_path / "agent.yaml",
                        f"  plugin:\n{extra}    plugins:\n{items}")


def test_exit_codes_summary_and_perfdata(tmp_path):
    s = {name: script(tmp_path / f"{name}.sh", body) for name, body in {
        "ok": "echo 'DISK OK - 3326 MB free | /=2643MB;5948;5958;0;5968 time=0.004s'\n"
              "echo 'long line 1'\necho 'long line 2 | more=7c'\n",
        "warn": "echo 'LOAD WARNING - load 7.1'; exit 1\n",
        "crit": "echo 'PROCS CRITICAL - 0 nginx'; exit 2\n",
        "unk": "echo 'UNKNOWN - cannot parse'; exit 3\n",
        "odd": "echo 'something'; exit 42\n",
        "silent": "echo 'only stderr' >&2; exit 2\n",
        "sig": "kill -SEGV $$\n",
    }.items()}
    config = plugins_config(tmp_path, [f"{{name: {n}, command: [{p}]}}" for n, p in s.items()]
                            + ["{name: gone, command: [/nonexistent/check_x, -w, '1']}"])
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert r["ok"][1:] == ("ok", "DISK OK - 3326 MB free")
    assert r["warn"][1:] == ("warning", "LOAD WARNING - load 7.1")
    assert r["crit"][1:] == ("critical", "PROCS CRITICAL - 0 nginx")
    assert r["unk"][1:] == ("unknown", "UNKNOWN - cannot parse")
    assert r["odd"][1:] == ("unknown", "odd: exit status 42 is not a plugin status (0-3): something")
    assert r["silent"][1:] == ("critical", "only stderr")
    assert r["sig"][1] == "unknown"
    assert r["sig"][2].startswith("sig: killed by signal 11 (Segmentation fault)")
    assert r["gone"][1:] == ("unknown", "gone: cannot run /nonexistent/check_x: "
                                        "No such file or directory")
    m = metrics_of(run.stdout, "ok")
    assert m == {"/": "2643", "time": "0.004", "more": "7"}


def test_events_carry_perfdata_context(server, tmp_path):
    ok = script(tmp_path / "ok.sh",
                "echo \"RAID WARNING - 1 of 2 disks | 'disks ok'=1;2:;1:;0;2\"\n"
                "echo 'md0: degraded'\nexit 1\n")
    config = write_agent_config(tmp_path / "agent.yaml", server.url, host="plughost",
                                checks=f"  plugin:\n    plugins:\n"
                                       f"      - {{name: raid, command: [{ok}]}}\n")
    run = run_agent(config, "--once")
    assert run.returncode == 0, run.stderr
    [t] = server.tickets("open")
    assert (t["check"], t["item"], t["state"]) == ("plugin", "raid", "warning")
    con = sqlite3.connect(server.db)
    metrics, context = con.execute(
        "SELECT metrics, context FROM events WHERE check_name = 'plugin'").fetchone()
    con.close()
    assert json.loads(metrics) == {"disks ok": 1}
    ctx = json.loads(context)
    assert ctx["exit_status"] == 1
    assert ctx["long_output"] == "md0: degraded"
    assert ctx["perfdata"] == [{"label": "disks ok", "value": 1, "uom": "",
                                "warn": "2:", "crit": "1:", "min": 0, "max": 2}]


def test_hang_is_killed_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    hang = script(tmp_path / "hang.sh",
                  f"sleep 300 & echo $! >> {pids}\n"
                  f"(sleep 300; echo never) & echo $! >> {pids}\n"
                  "echo 'still thinking'\nsleep 300\n")
    config = plugins_config(tmp_path, [f"{{name: hang, command: [{hang}], timeout: 1s}}"])
    started = time.monotonic()
    run = run_check(config, "plugin")
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert rows(run.stdout)["hang"][1:] == (
        "unknown", "hang: timed out after 1 s and was killed; first line: still thinking")
    assert elapsed < 10, f"a 1 s timeout took {elapsed:.1f} s"
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    wait_for(lambda: all(pid_dead(p) for p in children), timeout=5,
             what="the plugin's children to be dead")


def test_children_left_behind_are_killed(tmp_path):
    pidfile = tmp_path / "child.pid"
    leave = script(tmp_path / "leave.sh",
                   f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}\n"
                   "echo 'OK - forked and left'\n")
    config = plugins_config(tmp_path, [f"{{name: leave, command: [{leave}]}}"])
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    assert rows(run.stdout)["leave"][1:] == ("ok", "OK - forked and left")
    child = int(pidfile.read_text())
    wait_for(lambda: pid_dead(child), timeout=5, what="the left-behind child to be dead")


def session_leaver(tmp_path, pidfile, then):
    """A plugin whose child leaves its group and session (setsid) to sleep
    300 s, written to pidfile once it sleeps; then the plugin does then."""
    return script(tmp_path / "escape.sh",
                  "setsid /bin/sleep 300 </dev/null >/dev/null 2>&1 & p=$!\n"
                  'while [ "$(cat /proc/$p/comm 2>/dev/null)" != sleep ]; do :; done\n'
                  f"echo $p > {pidfile}\n" + then)


@pytest.mark.parametrize("then, timeout, row", [
    ("echo 'OK escape'\n", "10s", ("ok", "OK escape")),
    # the sleep 300 in its group dies with it: only the escaped one is left
    ("echo 'still thinking'\nsleep 300\n", "1s",
     ("unknown", "escape: timed out after 1 s and was killed; first line: still thinking")),
], ids=["at-exit", "at-timeout"])
def test_a_child_that_left_its_session_is_killed(tmp_path, then, timeout, row):
    pidfile = tmp_path / "child.pid"
    escape = session_leaver(tmp_path, pidfile, then)
    config = plugins_config(tmp_path, [f"{{name: escape, command: [{escape}], timeout: {timeout}}}"])
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    assert rows(run.stdout)["escape"][1:] == row
    # killed when the run ended, not by the agent's own exit
    assert run.stderr.count("plugin escape left 1 process behind; killed") == 1, run.stderr
    assert pid_dead(int(pidfile.read_text()))


def test_a_daemon_kills_an_escaped_child_and_keeps_running(tmp_path):
    """The agent outlives its plugins: without the sweep, an escaped child
    would outlive the run, one more per interval."""
    pidfile = tmp_path / "child.pid"
    escape = session_leaver(tmp_path, pidfile, "echo 'OK escape'\n")
    config = plugins_config(tmp_path, [f"{{name: escape, command: [{escape}], interval: 1h}}"])
    log = tmp_path / "agent.log"
    with agent_daemon(config, log) as agent:
        wait_for(lambda: "plugin escape left 1 process behind; killed" in
                 log.read_text(errors="replace"), timeout=30, what="the leftover to be killed")
        assert pid_dead(int(pidfile.read_text()))
        assert agent.poll() is None


def group_leaver(path, marker):
    """A plugin that moves into the agent's process group, says so in
    marker, and would say "slept" there after 8 s if nobody killed it."""
    path.write_text(f"""#!/usr/bin/python3
import os, time
os.setpgid(0, os.getpgid(os.getppid()))
open("{marker}", "a").write("left\\n")
print("still thinking", flush=True)
time.sleep(8)
open("{marker}", "a").write("slept\\n")
""")
    path.chmod(0o755)
    return str(path)


def test_a_plugin_that_left_its_group_is_killed_at_its_timeout(tmp_path):
    marker = tmp_path / "marker"
    leaver = group_leaver(tmp_path / "leaver.py", marker)
    config = plugins_config(tmp_path, [f"{{name: leaver, command: [{leaver}], timeout: 1s}}"])
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    assert rows(run.stdout)["leaver"][1:] == (
        "unknown", "leaver: timed out after 1 s and was killed; first line: still thinking")
    assert marker.read_text() == "left\n"


def test_a_reload_does_not_wait_for_a_plugin_that_left_its_group(server, tmp_path):
    marker = tmp_path / "marker"
    leaver = group_leaver(tmp_path / "leaver.py", marker)
    config = write_agent_config(
        tmp_path / "agent.yaml", server.url, host="daemonhost",
        checks=f"""\
  plugin:
    plugins:
      - {{name: leaver, command: [{leaver}], timeout: 30s, interval: 60s}}
""")
    with agent_daemon(config, tmp_path / "agent.log") as agent:
        wait_for(lambda: marker.exists() and marker.read_text(), timeout=20,
                 what="the plugin to leave its group")
        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in
                 (tmp_path / "agent.log").read_text(errors="replace"),
                 timeout=20, what="the reload")
        # the reload killed the plugin instead of waiting for its end
        # (the new configuration may have started it again), and said so
        assert "slept" not in marker.read_text()
        log = (tmp_path / "agent.log").read_text(errors="replace")
        assert re.search(r"plugin leaver: killed after \d+ m?s of running, "
                         r"abandoned by the reload", log), log


def test_flood_is_truncated_and_unknown(tmp_path):
    flood = script(tmp_path / "flood.sh", "while :; do echo 'flood flood flood flood'; done\n")
    burst = script(tmp_path / "burst.sh",
                   "echo 'OK - big output'\nhead -c 200000 /dev/zero | tr '\\0' x\n")
    config = plugins_config(tmp_path, [
        f"{{name: flood, command: [{flood}], timeout: 20s}}",
        f"{{name: burst, command: [{burst}]}}"])
    started = time.monotonic()
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    # the endless flood ends well before its timeout: once 1 MiB past the
    # limit is drained, the agent stops reading and the writer dies
    assert time.monotonic() - started < 15
    r = rows(run.stdout)
    assert r["flood"][1:] == ("unknown", "flood: output exceeded 64 KiB and was "
                                         "truncated; first line: flood flood flood flood")
    assert r["burst"][1:] == ("unknown", "burst: output exceeded 64 KiB and was "
                                         "truncated; first line: OK - big output")


def test_a_stderr_flood_is_said_to_be_cut_off_by_the_agent(tmp_path):
    """Past 1 MiB of stderr the agent closes the pipe and the plugin dies
    of SIGPIPE (its shell exits 141): the summary says why, instead of
    blaming the plugin for a status it never chose."""
    errflood = script(tmp_path / "errflood.sh", "echo 'OK fine'\nyes err >&2\n")
    errpipe = script(tmp_path / "errpipe.sh", "echo 'OK fine'\nexec yes err >&2\n")
    config = plugins_config(tmp_path, [
        f"{{name: errflood, command: [{errflood}], timeout: 20s}}",
        f"{{name: errpipe, command: [{errpipe}], timeout: 20s}}"])
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    cut = "the agent closed its stderr after 1 MiB, then it"
    assert r["errflood"][1:] == (
        "unknown", f"errflood: {cut} exited with status 141; first line: OK fine")
    assert r["errpipe"][1:] == (
        "unknown", f"errpipe: {cut} was killed by signal 13 (Broken pipe); "
                   "first line: OK fine")


def test_no_shell_minimal_environment_no_leaked_fds(tmp_path):
    env_out = tmp_path / "env.txt"
    probe = script(tmp_path / "probe.sh",
                   f"tr '\\0' '\\n' < /proc/$$/environ > {env_out}\n"
                   "echo \"OK - args: $*\"\n")
    # python lists its descriptors itself: 0-2 and the one listdir opens
    fds = "import os; print('OK', *sorted(os.listdir('/proc/self/fd'), key=int))"
    config = plugins_config(tmp_path, [
        f"{{name: probe, command: [{probe}, 'a b', '$(reboot)', ';', '*'], "
        f"env: {{API_KEY: s3cret}}}}",
        f"{{name: fds, command: [/usr/bin/python3, -S, -c, \"{fds}\"]}}"])
    run = run_check(config, "plugin", env={"SECRET_OF_THE_AGENT": "x"})
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    # arguments reach the plugin verbatim: no shell ever parsed them
    assert r["probe"][1:] == ("ok", "OK - args: a b $(reboot) ; *")
    env = sorted(env_out.read_text().split())
    # the mark that tells its descendants from another plugin's (run.h)
    marks = [e for e in env if e.startswith("TOCSIN_RUN=")]
    assert len(marks) == 1 and re.fullmatch(r"TOCSIN_RUN=\d+", marks[0]), env
    env.remove(marks[0])
    assert env == ["API_KEY=s3cret", "LC_ALL=C",
                   "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    # nothing of the agent's (state database, sockets, epoll) leaked in
    assert r["fds"][1] == "ok"
    assert r["fds"][2] == "OK 0 1 2 3"


def test_one_shot_runs_each_plugin_once(tmp_path):
    count = tmp_path / "count"
    fast = script(tmp_path / "fast.sh", f"echo x >> {count}; echo 'OK - fast'\n")
    slow = script(tmp_path / "slow.sh", "sleep 2; echo 'OK - slow'\n")
    config = plugins_config(tmp_path, [
        f"{{name: fast, command: [{fast}], interval: 1s}}",
        f"{{name: slow, command: [{slow}], timeout: 5s}}"])
    run = run_check(config, "plugin")
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert r["fast"][1] == r["slow"][1] == "ok"
    assert count.read_text().count("x") == 1
    assert run.stdout.count("OK - fast") == 1


def test_a_hanging_plugin_does_not_stall_the_others(server, tmp_path):
    """In the daemon, a plugin that hangs for 30 s must not hold back a
    1-second plugin nor the heartbeat: their events keep arriving."""
    hang = script(tmp_path / "hang.sh", "sleep 30\n")
    fast = script(tmp_path / "fast.sh", "echo 'CHECK WARNING - fast'; exit 1\n")
    config = write_agent_config(
        tmp_path / "agent.yaml", server.url, host="daemonhost",
        checks=f"""\
  plugin:
    max_concurrent: 2
    plugins:
      - {{name: hang, command: [{hang}], timeout: 30s, interval: 60s}}
      - {{name: fast, command: [{fast}], interval: 1s}}
""")
    with agent_daemon(config, tmp_path / "agent.log"):
        started = time.monotonic()
        wait_for(lambda: server.tickets("open") and
                 server.tickets("open")[0]["occurrence_count"] >= 4,
                 timeout=20, what="four results of the fast plugin")
        assert time.monotonic() - started < 15
        [t] = server.tickets("open")
        assert t["item"] == "fast"  # the hanging one has not finished
    # stopping the agent killed the hanging plugin's group
    assert subprocess.run(["pgrep", "-f", str(hang)], capture_output=True).returncode == 1


def test_config_errors_name_file_line_column(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("server:\n  url: https://127.0.0.1:9\n  token: t\n"
                   "checks:\n"
                   "  plugin:\n"
                   "    max_concurrent: 0\n"
                   "    plugins:\n"
                   "      - name: rel\n"
                   "        command: [check_disk, -w, 10%]\n"
                   "      - name: shell\n"
                   "        command: /usr/lib/nagios/plugins/check_x -w 1\n"
                   "      - name: 'bad name'\n"
                   "        command: [/bin/true]\n"
                   "      - name: fast\n"
                   "        command: [/bin/true]\n"
                   "        timeout: 10ms\n"
                   "        colour: red\n"
                   "      - command: [/bin/true]\n")
    r = check_config(cfg)
    assert r.returncode == 2
    err = r.stderr
    assert f"{cfg}:6:21: checks.plugin.max_concurrent: 0 is out of range 1..64" in err
    assert (f"{cfg}:9:19: checks.plugin.plugins[0].command[0]: 'check_disk' is not an "
            "absolute path (plugins run without a shell or PATH search)") in err
    assert (f"{cfg}:11:18: checks.plugin.plugins[1].command: command must be a list: "
            "[/absolute/path, arg, ...] (no shell is used)") in err
    assert f"{cfg}:12:15: checks.plugin.plugins[2].name: name 'bad name' may only hold" in err
    assert f"{cfg}:16:18: checks.plugin.plugins[3].timeout: timeout must be between 100ms and 1h" in err
    assert f"{cfg}:17:9: checks.plugin.plugins[3].colour: unknown key 'colour'" in err
    assert f"{cfg}:18:9: checks.plugin.plugins[4]: a plugin needs a name" in err
