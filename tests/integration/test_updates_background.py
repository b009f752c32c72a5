"""The apt simulation never holds up the agent daemon.

The updates check runs apt-get as a child process on its own interval and
reports when it finishes, while the agent keeps running its other checks:
also on its very first round, and after a restart or a SIGHUP reload (a
reload builds a new check context), which report at once from the last
snapshot in the state database instead of running apt again.  The real
apt is tested in a container (test_systemd_checks.py); here the machine's
apt state cannot be changed between runs, so a small script stands in for
apt-get: it prints real `apt-get -s` lines, one more package each run, and
takes a few seconds.  Its inputs (lists, dpkg's status, apt's
configuration) are directories of the test, so that a test can change
them: the simulation runs again only when they changed.
"""
import os
import signal
import subprocess
import time

from conftest import assert_no_sanitizer_errors, binary, wait_for, write_agent_config

FAKE_APT = """\
#!/bin/sh
# one more upgradable package per run, slowly
n=$(cat {count} 2>/dev/null || echo 0)
n=$((n + 1))
# atomically: the test reads the count while this runs
echo $n > {count}.new && mv {count}.new {count}
sleep {sleep}
i=1
while [ $i -le $n ]; do
    echo "Inst pkg$i [1.0] (1.1 Debian-Security:12/oldstable-security [amd64])"
    i=$((i + 1))
done
"""


def updates_config(server, tmp_path, host, sleep, apt_interval, more="", extra=""):
    apt = tmp_path / "apt-get"
    apt.write_text(FAKE_APT.format(count=tmp_path / "count", sleep=sleep))
    apt.chmod(0o755)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("x")
    (tmp_path / "status").write_text("Package: pkg1\n")
    (tmp_path / "etc-apt" / "sources.list.d").mkdir(parents=True)
    checks = (f"  disk:\n    interval: 1s\n    discover: false\n"
              f"    mounts:\n      - path: {tmp_path}\n        warning: 0%\n"
              f"  updates:\n    interval: 1s\n    apt_interval: {apt_interval}\n"
              f"    apt_get: {apt}\n    apt_config: /bin/true\n"
              f"    lists_dir: {tmp_path}/lists\n    dpkg_status: {tmp_path}/status\n"
              f"    apt_etc: {tmp_path}/etc-apt\n"
              f"    history_log: ''\n    dpkg_log: ''\n{more}")
    return write_agent_config(tmp_path / "agent.yaml", server.url, host=host,
                              checks=checks, extra=extra)


class Tickets:
    def __init__(self, server, host):
        self.server = server
        self.host = host

    def get(self, item):
        return next((t for t in self.server.tickets("all")
                     if t["host"] == self.host and t["item"] == item), None)

    def count(self, item):
        t = self.get(item)
        return t["occurrence_count"] if t else 0

    def latest_summary(self, item):
        return self.server.ticket(self.get(item)["id"])["occurrences"][0]["summary"]


def touch_later(path):
    """A new modification time, as apt update or dpkg would leave."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def apt_runs(tmp_path):
    return int((tmp_path / "count").read_text().strip())


# logged (log_level: debug) when apt_interval is over but nothing changed
LEFT_OUT = "updates: apt's inputs did not change since its last run: not running it again"


def looks_left_out(log_path):
    return log_path.read_text().count(LEFT_OUT)


def start(config, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen([binary("tocsin-agent"), "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT), log


def stop(agent, log, log_path):
    agent.send_signal(signal.SIGTERM)
    rc = agent.wait(timeout=20)
    log.close()
    text = log_path.read_text()
    assert_no_sanitizer_errors(text, "tocsin-agent")
    assert rc == 0, text


def first_apt_result(config, tickets, log_path):
    """Run the agent until its first apt result is at the collector."""
    agent, log = start(config, log_path)
    try:
        wait_for(lambda: tickets.get("security"), timeout=30, what="the first apt result")
    finally:
        stop(agent, log, log_path)


def test_apt_runs_in_the_background_from_the_first_round(server, tmp_path):
    config = updates_config(server, tmp_path, "bg01", sleep=3, apt_interval="6s")
    t = Tickets(server, "bg01")
    disk = str(tmp_path)
    started = time.monotonic()
    agent, log = start(config, tmp_path / "agent.log")
    try:
        # the first round does not wait for apt's three seconds: the disk
        # ticket is there while the first simulation still runs
        wait_for(lambda: t.count(disk) > 0, timeout=30, what="the disk ticket")
        assert t.get("security") is None, "the first round waited for apt"
        before_apt = t.count(disk)
        wait_for(lambda: t.get("security"), timeout=30, what="the first apt result")
        assert time.monotonic() - started >= 3
        assert t.latest_summary("security").startswith("1 security update: pkg1 ")
        # the disk check kept its 1 s interval meanwhile
        assert t.count(disk) > before_apt
        # the second run comes 6 s after the first started (the lists
        # changed meanwhile: apt update ran), takes 3 s and reports at its
        # end; the disk check goes on meanwhile
        touch_later(tmp_path / "lists" / "deb.debian.org_debian_dists_bookworm_InRelease")
        wait_for(lambda: (tmp_path / "count").read_text().strip() == "2", timeout=20,
                 what="the second apt run to start")
        during = t.count(disk)
        wait_for(lambda: t.count(disk) > during and
                 t.latest_summary("security").startswith("1 security update: "),
                 timeout=10, what="disk results while apt is still running")
        wait_for(lambda: t.latest_summary("security").startswith("2 security updates: "),
                 timeout=20, what="the background run's result")
    finally:
        stop(agent, log, tmp_path / "agent.log")


def test_restart_and_reload_report_from_the_saved_snapshot(server, tmp_path):
    """A restarted agent, and one that reloads on SIGHUP, report the apt
    items at once from the state database, without waiting for apt and
    without running it again while the snapshot is younger than
    apt_interval."""
    config = updates_config(server, tmp_path, "bg02", sleep=3, apt_interval="1h")
    t = Tickets(server, "bg02")
    log_path = tmp_path / "agent.log"
    first_apt_result(config, t, log_path)
    first = t.count("security")

    started = time.monotonic()
    agent, log = start(config, log_path)
    try:
        wait_for(lambda: t.count("security") > first, timeout=10,
                 what="the restarted agent's apt items")
        # well within the three seconds a run of apt would take
        assert time.monotonic() - started < 2.5
        assert t.latest_summary("security").startswith("1 security update: pkg1 ")
        after_restart = t.count("security")

        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in log_path.read_text(), timeout=10,
                 what="the reload")
        wait_for(lambda: t.count("security") > after_restart, timeout=5,
                 what="the apt items after the reload")
        # nobody ran apt again: the snapshot is younger than apt_interval
        assert (tmp_path / "count").read_text().strip() == "1"
    finally:
        stop(agent, log, log_path)


def test_a_changed_apt_setting_ignores_the_saved_snapshot(server, tmp_path):
    """The snapshot belongs to the apt settings that made it: another
    apt_get (or mode, or security_patterns) runs apt anew."""
    config = updates_config(server, tmp_path, "bg03", sleep=0, apt_interval="1h")
    t = Tickets(server, "bg03")
    log_path = tmp_path / "agent.log"
    first_apt_result(config, t, log_path)
    other = tmp_path / "apt-get-other"
    os.link(tmp_path / "apt-get", other)
    config.write_text(config.read_text().replace(f"apt_get: {tmp_path}/apt-get\n",
                                                 f"apt_get: {other}\n"))
    agent, log = start(config, log_path)
    try:
        wait_for(lambda: t.latest_summary("security").startswith("2 security updates"),
                 timeout=30, what="a new apt run for the new apt_get")
    finally:
        stop(agent, log, log_path)


def test_apt_runs_again_only_when_its_inputs_changed(server, tmp_path):
    """With nothing changed since the last simulation apt would say the
    same, so it does not run again (it costs seconds of CPU on some
    hosts); a change of the package lists, of dpkg's status or of apt's
    configuration runs it at the next apt_interval.  The agent's debug
    log says when it looked and left apt out: the test waits for those
    looks, not for a guess of when they happen."""
    config = updates_config(server, tmp_path, "bg04", sleep=0, apt_interval="5s",
                            extra="log_level: debug\n")
    t = Tickets(server, "bg04")
    log_path = tmp_path / "agent.log"
    agent, log = start(config, log_path)
    try:
        wait_for(lambda: t.get("security"), timeout=30, what="the first apt result")
        # an interval with nothing changed: a look, no second run (that
        # the agent goes on looking shows in the runs the changes cause)
        wait_for(lambda: looks_left_out(log_path) >= 1, timeout=15,
                 what="a look at apt's unchanged inputs")
        assert apt_runs(tmp_path) == 1
        for n, change in enumerate([
                lambda: touch_later(tmp_path / "lists" /
                                    "deb.debian.org_debian_dists_bookworm_InRelease"),
                lambda: (tmp_path / "status").write_text("Package: pkg1\nPackage: pkg2\n"),
                lambda: (tmp_path / "etc-apt" / "sources.list.d" / "extra.sources")
                .write_text("Types: deb\n"),
        ], start=2):
            change()
            wait_for(lambda: apt_runs(tmp_path) == n, timeout=15,
                     what=f"apt run {n} after a change of its inputs")
            wait_for(lambda: t.latest_summary("security").startswith(f"{n} security updates"),
                     timeout=10, what=f"the result of apt run {n}")
        # apt's lock and download directory are no change: the next look,
        # the first counted from after they appeared, leaves apt out (and
        # the last run kept the inputs it saw)
        (tmp_path / "lists" / "lock").write_text("")
        (tmp_path / "lists" / "partial").mkdir()
        looks = looks_left_out(log_path)
        wait_for(lambda: looks_left_out(log_path) > looks, timeout=15,
                 what="a look at apt's inputs with the lock and partial/")
        assert apt_runs(tmp_path) == 4
    finally:
        stop(agent, log, log_path)


def test_apt_refresh_runs_apt_although_nothing_changed(server, tmp_path):
    """apt_refresh bounds the age of an answer whose inputs did not
    change (a safety net for what the fingerprint cannot see)."""
    config = updates_config(server, tmp_path, "bg05", sleep=0, apt_interval="5s",
                            more="    apt_refresh: 7s\n")
    t = Tickets(server, "bg05")
    log_path = tmp_path / "agent.log"
    agent, log = start(config, log_path)
    try:
        wait_for(lambda: t.get("security"), timeout=30, what="the first apt result")
        first = time.monotonic()
        wait_for(lambda: apt_runs(tmp_path) >= 2, timeout=20,
                 what="a second run after apt_refresh")
        # not at the first apt_interval (5 s), when the answer was younger
        # than apt_refresh, but at the second
        assert time.monotonic() - first >= 8
    finally:
        stop(agent, log, log_path)
