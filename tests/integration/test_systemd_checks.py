"""The updates and services checks against a real systemd and a real apt.

One container per module (systemd booted by systemd-nspawn, see
systemd_container.py) with a local apt repository built here with dpkg-deb
and apt-ftparchive: version 1.1 of two packages installed at 1.0, one of
them from a security suite.  The agent (the ASan build) runs inside the
container as a daemon and delivers to a real tocsin-server on the host's
loopback; the tests act inside the container with systemctl and apt-get
and look at what the collector's API shows.

The daemon's services interval is one hour, so everything it reports
after its first round came through systemd's PropertiesChanged signals.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import AGENT_TOKEN, ROOT, Server, assert_no_sanitizer_errors, binary, wait_for
from systemd_container import Container, unavailable_reason

HOST = "container01"

UNITS = {
    "failme.service": "[Service]\nExecStart=/bin/false\n",
    "watched-app.service": "[Service]\nExecStart=/bin/sleep infinity\n",
    # the application that breaks when tocsin-demo-lib is upgraded
    "demo-app.service": "[Service]\nExecStart=/usr/bin/tocsin-demo-app\n",
    "backup-job.service": ("[Service]\nType=oneshot\n"
                           "ExecStart=/bin/sh -c 'echo backup target full >&2; exit 2'\n"),
    "backup-job.timer": "[Timer]\nOnActiveSec=1s\nAccuracySec=1ms\n",
    # fails three times, then runs: NRestarts stays 3 for good
    "thrice.service": ("[Service]\nRestart=on-failure\nRestartSec=100ms\n"
                       "ExecStart=/bin/sh -c 'n=$(cat /run/thrice 2>/dev/null || echo 0);"
                       " echo $((n + 1)) > /run/thrice; [ $n -ge 3 ] && exec sleep infinity;"
                       " exit 1'\n"),
    # 150 lines of 600 characters, then a failure
    "chatty.service": ("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'for i in $$(seq 1 150);"
                       " do printf \"line %%d %%0590d\\n\" $$i 0; done; exit 1'\n"),
}

DEMO_APP = {
    "1.0": "#!/bin/sh\necho 'demo app 1.0 serving'\nexec sleep infinity\n",
    "1.1": ("#!/bin/sh\necho 'tocsin-demo-app: libdemo.so.2: version LIBDEMO_1.1 not found'"
            " >&2\nexit 1\n"),
}

AGENT_CONFIG = """\
host: {host}
role: {role}
state_dir: {state_dir}
log_level: debug
server:
  url: {url}
  allow_plain_http: true
  token: {token}
  timeout: 5s
  # the tests count events as they come: repeats go at once too
  hold_repeats: 0s
checks:
  disk:
    enabled: false
  updates:
    interval: {interval}
    apt_interval: 1h
    # unattended-upgrades itself (python3) is not in the test root; the
    # check wants its program to exist, and any executable does
    unattended_upgrade: /usr/bin/apt-get
  services:
    interval: {interval}
    watch: [watched-*.service]
    timers: [backup-job.timer]
    restarts_warning: 3
{services_extra}"""


def build_deb(workdir, name, version, files):
    """A real .deb from {path: (text, mode)} via dpkg-deb."""
    pkg = Path(workdir) / f"{name}_{version}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        f"Maintainer: Tocsin tests <tests@example.invalid>\n"
        f"Description: test package for Tocsin's updates check\n")
    for path, (text, mode) in files.items():
        p = pkg / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
    out = Path(workdir) / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(pkg),
                    str(out)], check=True, capture_output=True)
    return out


def build_repo(repo, suites):
    """A local apt repository: {suite: (origin, [debs])}, unsigned."""
    for suite, (origin, debs) in suites.items():
        pool = repo / "pool" / suite
        pool.mkdir(parents=True)
        for deb in debs:
            (pool / deb.name).write_bytes(deb.read_bytes())
        dist = repo / "dists" / suite
        binary_dir = dist / "main" / "binary-amd64"
        binary_dir.mkdir(parents=True)
        packages = subprocess.run(["apt-ftparchive", "packages", f"pool/{suite}"], cwd=repo,
                                  check=True, capture_output=True, text=True).stdout
        (binary_dir / "Packages").write_text(packages)
        opts = []
        for key, value in (("Origin", origin), ("Label", origin), ("Suite", suite),
                           ("Codename", suite), ("Components", "main"),
                           ("Architectures", "amd64")):
            opts += ["-o", f"APT::FTPArchive::Release::{key}={value}"]
        release = subprocess.run(["apt-ftparchive", *opts, "release", str(dist)],
                                 check=True, capture_output=True, text=True).stdout
        (dist / "Release").write_text(release)


def sanitizer_env():
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["LSAN_OPTIONS"] = "suppressions=/etc/tocsin/lsan.supp:print_suppressions=0"
    return env


class Lab:
    """The container, its repository, the collector and the agent daemon."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.container = Container(self.workdir / "container")
        self.server = Server(self.workdir / "server")
        self.agent = None
        self.agent_pid = None
        self.agent_log = self.workdir / "agent.log"

    def prepare(self):
        c = self.container.unpack()
        c.copy_in(binary("tocsin-agent"), "/usr/local/bin/tocsin-agent")
        # its network side, where the agent looks first: next to it
        c.copy_in(binary("tocsin-agent-deliver"), "/usr/local/bin/tocsin-agent-deliver")
        c.copy_in(ROOT / "tests" / "lsan.supp", "/etc/tocsin/lsan.supp", mode=0o644)
        for name, text in UNITS.items():
            c.write(f"/etc/systemd/system/{name}", text)
        debs = self.workdir / "debs"
        debs.mkdir()
        lib = {v: build_deb(debs, "tocsin-demo-lib", v,
                            {"/usr/bin/tocsin-demo-app": (DEMO_APP[v], 0o755)})
               for v in ("1.0", "1.1")}
        tool = {v: build_deb(debs, "tocsin-demo-tool", v,
                             {"/usr/share/tocsin-demo-tool/VERSION": (v + "\n", 0o644)})
                for v in ("1.0", "1.1")}
        for deb in (lib["1.0"], tool["1.0"]):
            c.copy_in(deb, f"/srv/initial/{deb.name}", mode=0o644)
        build_repo(c.path("/srv/repo"), {
            "bookworm": ("Debian", [tool["1.1"]]),
            "bookworm-security": ("Debian-Security", [lib["1.1"]]),
        })
        c.write("/etc/apt/sources.list.d/tocsin-test.list",
                "deb [trusted=yes] file:/srv/repo bookworm main\n"
                "deb [trusted=yes] file:/srv/repo bookworm-security main\n")
        c.write("/etc/apt/apt.conf.d/20auto-upgrades",
                'APT::Periodic::Update-Package-Lists "1";\n'
                'APT::Periodic::Unattended-Upgrade "1";\n')
        c.boot()
        c.run("sh", "-c", "dpkg -i /srv/initial/*.deb")
        c.run("apt-get", "update", "-q")
        c.systemctl("daemon-reload")
        c.systemctl("start", "watched-app.service", "demo-app.service",
                    "backup-job.timer")
        # the timer fires after a second and its job fails
        wait_for(lambda: c.systemctl("is-failed", "backup-job.service",
                                     check=False).stdout.strip() == "failed",
                 timeout=20, what="backup-job.service to run and fail")
        self.server.start()
        return self

    def agent_config(self, path, role="central", interval="1h", state_dir=None,
                     host=HOST, services_extra=""):
        self.container.write(path, AGENT_CONFIG.format(
            host=host, role=role, url=self.server.url, token=AGENT_TOKEN,
            interval=interval, state_dir=state_dir or "/var/lib/tocsin-agent",
            services_extra=services_extra))
        return path

    def start_agent(self):
        self.agent_config("/etc/tocsin/agent.yaml")
        self.agent_fp = open(self.agent_log, "wb")
        self.agent, self.agent_pid = self.container.spawn(
            "/usr/local/bin/tocsin-agent", "--config", "/etc/tocsin/agent.yaml",
            stdout=self.agent_fp, env=sanitizer_env())
        assert self.agent_pid, f"the agent did not start:\n{self.agent_log.read_text()}"
        wait_for(lambda: self.ticket("updates", "pending"), timeout=60,
                 what="the agent's first round at the collector")

    def stop_agent(self):
        if self.agent is None:
            return
        if self.agent.poll() is None and self.agent_pid:
            os.kill(self.agent_pid, signal.SIGTERM)
        try:
            self.agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            self.agent.wait()
        self.agent = None
        self.agent_fp.close()

    def ticket(self, check, item, state="all"):
        for t in self.server.tickets(state):
            if t["host"] == HOST and t["check"] == check and t["item"] == item:
                return t
        return None

    def run_once(self, name, **kw):
        """--once with another config and state directory; the table."""
        config = self.agent_config(f"/etc/tocsin/{name}.yaml",
                                   state_dir=f"/var/lib/tocsin-{name}", **kw)
        proc = self.container.run("/usr/local/bin/tocsin-agent", "--config", config,
                                  "--once", check=False, env=sanitizer_env())
        assert_no_sanitizer_errors(proc.stderr, "tocsin-agent --once")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def close(self):
        try:
            self.stop_agent()
        finally:
            try:
                self.server.stop()
            finally:
                self.container.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = Lab(tmp_path_factory.mktemp("systemd-lab"))
    try:
        lab.prepare()
        lab.start_agent()
        yield lab
        lab.stop_agent()
        log = lab.agent_log.read_text(errors="replace")
        assert_no_sanitizer_errors(log, "tocsin-agent in the container")
        assert "received signal 15, stopping" in log, log[-3000:]
    finally:
        lab.close()


def row(table, check, item):
    """The STATE and SUMMARY of one row of the agent's printed table."""
    for line in table.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0] == check and parts[1] == item:
            return parts[2], parts[3]
    raise AssertionError(f"no row {check} {item} in:\n{table}")


def latest(ticket_summary, server):
    return server.ticket(ticket_summary["id"])["occurrences"][0]


def test_pending_and_security_updates_from_the_local_repository(lab):
    pending = lab.ticket("updates", "pending")
    assert pending["state"] == "warning"
    assert pending["summary"].startswith("2 pending updates: ")
    assert "tocsin-demo-lib 1.0 -> 1.1" in pending["summary"]
    assert "tocsin-demo-tool 1.0 -> 1.1" in pending["summary"]
    occ = latest(pending, lab.server)
    assert occ["metrics"]["pending"] == 2
    assert {p["package"] for p in occ["context"]["packages"]} == {"tocsin-demo-lib",
                                                                  "tocsin-demo-tool"}

    security = lab.ticket("updates", "security")
    assert security["state"] == "critical"
    assert security["summary"] == "1 security update: tocsin-demo-lib 1.0 -> 1.1"
    assert latest(security, lab.server)["metrics"]["security"] == 1


def test_unattended_upgrades_on_a_central_host_warn(lab):
    t = lab.ticket("updates", "unattended")
    assert t["state"] == "warning"
    assert t["summary"].startswith("unattended-upgrades is enabled on this central host")
    # the same host as decentral: on, but fine
    table = lab.run_once("decentral", role="decentral", host="container02")
    state, summary = row(table, "updates", "unattended")
    assert (state, summary) == ("ok", "unattended-upgrades is enabled on this decentral host")


def test_a_failing_unit_is_reported_as_it_fails(lab):
    started = time.monotonic()
    lab.container.systemctl("start", "failme.service")
    t = wait_for(lambda: lab.ticket("services", "failme.service"), timeout=15,
                 what="the failme.service ticket")
    latency = time.monotonic() - started
    print(f"failme.service: ticket {latency * 1000:.0f} ms after systemctl start returned")
    assert t["state"] == "critical"
    assert t["summary"] == "failme.service failed (exit-code)"
    context = latest(t, lab.server)["context"]
    assert context["unit"] == "failme.service"
    assert context["result"] == "exit-code"
    assert any("Failed with result 'exit-code'" in line for line in context["journal"]), \
        context["journal"]
    # the failed count went out with it, not an hour later at the next poll
    failed = lab.ticket("services", "failed")
    assert "failme.service" in latest(failed, lab.server)["summary"]


def test_a_restart_loop_is_a_warning(lab):
    lab.container.run("systemd-run", "--unit=flaky", "-p", "Restart=always",
                      "-p", "RestartSec=200ms", "-p", "StartLimitIntervalSec=0",
                      "/bin/sh", "-c", "sleep 0.1; exit 3")
    try:
        t = wait_for(lambda: lab.ticket("services", "flaky.service"), timeout=15,
                     what="the flaky.service ticket")
        assert t["state"] == "warning"
        assert "flaky.service is restarting in a loop" in t["summary"]
        assert latest(t, lab.server)["metrics"]["restarts"] >= 1
    finally:
        lab.container.systemctl("stop", "flaky.service", check=False)


def test_a_burst_of_transitions_is_reported_within_a_second(lab):
    """Units that restart several times in quick succession and then
    fail, all at once: every transition sends signals, and the agent's own
    calls while it handles one read the next into sd-bus's queue, where
    poll() cannot see them.  Each final failure must still be reported
    within a second, not at the next poll an hour later."""
    c = lab.container
    # 24 at once: with the old two passes per wake-up, some of 16 were
    # left in the queue in about every other run
    units = [f"bursty{i}" for i in range(24)]
    c.run("sh", "-c", " & ".join(
        f"systemd-run --unit={u} -p Restart=on-failure -p RestartSec=5ms "
        f"-p StartLimitBurst=10 -p StartLimitIntervalSec=60s /bin/false"
        for u in units) + "; wait")
    try:
        failed_at = {}
        reported_at = {}
        deadline = time.monotonic() + 15
        while len(reported_at) < len(units) and time.monotonic() < deadline:
            states = c.run("systemctl", "is-failed", *[f"{u}.service" for u in units],
                           check=False).stdout.split()
            now = time.monotonic()
            for u, st in zip(units, states):
                if st == "failed":
                    failed_at.setdefault(u, now)
            for t in lab.server.tickets("all"):
                u = t["item"].removesuffix(".service")
                if t["host"] == HOST and u in units and t["state"] == "critical":
                    reported_at.setdefault(u, now)
            time.sleep(0.05)
        late = {u: reported_at.get(u, float("inf")) - failed_at.get(u, deadline)
                for u in units}
        print("burst: failure to collector, s:", {u: round(d, 2) for u, d in late.items()})
        assert all(d < 1.0 for d in late.values()), late
    finally:
        c.systemctl("reset-failed", *[f"{u}.service" for u in units], check=False)


def unit_properties(container, unit, *props):
    out = container.systemctl("show", unit, *[f"--property={p}" for p in props]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_old_restarts_of_a_running_unit_are_not_a_loop(lab):
    """NRestarts only counts up: three restarts long ago, and a unit that
    has run fine since, must not be a warning forever.  The daemon saw the
    restarts happen, within its window (3 in 1 h): a warning.  An agent
    that starts afterwards sees only the count of a unit that runs now:
    nothing to say."""
    c = lab.container
    c.systemctl("start", "thrice.service")
    wait_for(lambda: unit_properties(c, "thrice.service", "NRestarts", "SubState")
             == {"NRestarts": "3", "SubState": "running"},
             timeout=20, what="thrice.service to run after three restarts")
    t = wait_for(lambda: lab.ticket("services", "thrice.service"), timeout=10,
                 what="the daemon's restart-loop warning")
    assert t["state"] == "warning"
    assert "3 restarts in the last 1 h, 3 in all" in \
        latest(t, lab.server)["summary"], latest(t, lab.server)["summary"]
    table = lab.run_once("thrice", host="container04")
    assert "thrice.service" not in table, table


def test_a_fresh_agent_sees_a_loop_that_is_going_on(lab):
    """Without history the absolute count still counts while systemd is
    restarting the unit: an agent started in the middle of a loop warns."""
    c = lab.container
    c.run("systemd-run", "--unit=slowloop", "-p", "Restart=always", "-p", "RestartSec=2s",
          "-p", "StartLimitIntervalSec=0", "/bin/false")
    try:
        wait_for(lambda: int(unit_properties(c, "slowloop.service", "NRestarts")
                             ["NRestarts"]) >= 3,
                 timeout=20, what="slowloop.service to restart three times")
        table = lab.run_once("slowloop", host="container05")
        state, summary = row(table, "services", "slowloop.service")
        assert state == "warning"
        assert summary.startswith("slowloop.service is restarting in a loop: 0 restarts "
                                  "in the last 1 h"), summary
    finally:
        c.systemctl("stop", "slowloop.service", check=False)


def test_a_stopped_watched_unit_is_critical_and_recovers(lab):
    lab.container.systemctl("stop", "watched-app.service")
    t = wait_for(lambda: lab.ticket("services", "watched-app.service", "open"),
                 timeout=15, what="the watched-app.service ticket")
    assert t["state"] == "critical"
    assert t["summary"] == "watched-app.service is inactive (dead), it must be active"
    lab.container.systemctl("start", "watched-app.service")
    wait_for(lambda: lab.ticket("services", "watched-app.service")["state"] == "ok",
             timeout=15, what="the watched unit's recovery")
    t = lab.ticket("services", "watched-app.service")
    assert t["status"] in ("recovered", "resolved")
    assert latest(t, lab.server)["summary"] == "watched-app.service is active (running)"


def test_a_failure_after_an_upgrade_names_the_package(lab):
    c = lab.container
    c.run("apt-get", "install", "-y", "-q", "tocsin-demo-lib")
    c.systemctl("restart", "demo-app.service")
    t = wait_for(lambda: lab.ticket("services", "demo-app.service"), timeout=15,
                 what="the demo-app.service ticket")
    assert t["state"] == "critical"
    assert t["summary"].startswith("demo-app.service failed ")
    assert t["summary"].endswith(" after the upgrade of tocsin-demo-lib 1.0 -> 1.1"), \
        t["summary"]
    context = latest(t, lab.server)["context"]
    upgraded = [(u["package"], u["from"], u["to"]) for u in context["upgrades"]]
    assert upgraded == [("tocsin-demo-lib", "1.0", "1.1")]
    assert any("version LIBDEMO_1.1 not found" in line for line in context["journal"]), \
        context["journal"]
    assert len(context["journal"]) <= 20


def test_once_reports_timer_results_reboot_and_recent_upgrades(lab):
    c = lab.container
    c.run("sh", "-c", "printf 'linux-image-6.1.0-28-amd64\\nlibc6\\nlibc6\\n' "
          "> /run/reboot-required.pkgs && touch -d '3 days ago' /run/reboot-required")
    table = lab.run_once("once")
    assert row(table, "services", "backup-job.timer")[0] == "critical"
    assert "the last run of backup-job.service" in row(table, "services", "backup-job.timer")[1]
    assert "failed (exit-code)" in row(table, "services", "backup-job.timer")[1]
    assert row(table, "services", "backup-job.service")[0] == "critical"
    state, summary = row(table, "services", "failed")
    assert state == "critical"
    assert summary.startswith("3 failed units: ")
    assert row(table, "updates", "reboot") == (
        "warning", "reboot required for 3 d by linux-image-6.1.0-28-amd64, libc6")
    state, summary = row(table, "updates", "upgrades")
    assert state == "ok"
    assert "tocsin-demo-lib 1.0 -> 1.1" in summary
    # stale lists are a warning, and say so in the counts they discredit
    c.run("sh", "-c", "touch -d '10 days ago' /var/lib/apt/lists/*Release")
    table = lab.run_once("stale")
    assert row(table, "updates", "lists") == (
        "warning", "package lists are 10 d old; stale beyond 7 d")
    assert row(table, "updates", "pending")[1].endswith("(package lists are 10 d old)")


def test_a_failed_backup_job_is_one_ticket(lab):
    """A backup target that names its job's unit owns that unit's failure
    (checks/claims.h): the target is critical and carries the job's
    journal lines, and the services check, which would open a ticket of
    its own for the failed unit and one for its timer, leaves both to it
    and says so in its failed count."""
    c = lab.container
    c.write("/srv/backups/db-1.tar", "x" * 1000)
    table = lab.run_once("owner", host="container06", services_extra=(
        "  backup:\n    targets:\n"
        "      - {name: nightly, path: /srv/backups/*.tar, unit: backup-job.timer}\n"))
    state, summary = row(table, "backup", "nightly")
    assert state == "critical"
    assert summary.startswith("nightly: last run of backup-job.service failed"), summary
    assert not any(line.split()[:2] == ["services", "backup-job.service"]
                   for line in table.splitlines()), table
    assert row(table, "services", "backup-job.timer") == (
        "ok", "backup-job.timer: backup target nightly reports its runs")
    state, summary = row(table, "services", "failed")
    assert "backup-job.service (backup target nightly)" in summary.split("; ")[-1], summary
    assert "backup-job" not in summary.split("; ")[0], summary

    # (the failed count is open for the container's other failed units)
    problems = [t for t in lab.server.tickets("open") if t["host"] == "container06"
                and t["item"] in ("nightly", "backup-job.service", "backup-job.timer")]
    assert [(t["check"], t["item"]) for t in problems] == [("backup", "nightly")], problems
    context = latest(problems[0], lab.server)["context"]
    assert context["unit"] == "backup-job.service"
    assert context["result"] == "exit-code"
    assert any("backup target full" in line for line in context["journal"]), context


def test_a_restarted_agent_still_resolves_what_it_reported(lab):
    # the daemon reported demo-app.service failed and remembered that in
    # its state database; it stops, the unit recovers meanwhile
    lab.stop_agent()
    lab.container.systemctl("reset-failed", "demo-app.service")
    proc = lab.container.run("/usr/local/bin/tocsin-agent", "--config",
                             "/etc/tocsin/agent.yaml", "--once", check=False,
                             env=sanitizer_env())
    assert_no_sanitizer_errors(proc.stderr, "tocsin-agent --once")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert row(proc.stdout, "services", "demo-app.service") == (
        "ok", "demo-app.service is inactive (dead)")
    t = lab.ticket("services", "demo-app.service")
    assert t["state"] == "ok"
    assert t["status"] in ("recovered", "resolved")
    # said once: the next round has nothing to say about it
    proc = lab.container.run("/usr/local/bin/tocsin-agent", "--config",
                             "/etc/tocsin/agent.yaml", "--dry-run", env=sanitizer_env())
    assert "demo-app.service" not in proc.stdout


def test_a_dry_run_leaves_the_ok_to_the_next_real_run(lab):
    # --once reports failme.service failed and remembers that; the unit
    # recovers; --dry-run and `check` see the recovery but deliver
    # nothing, so the next real run must still send the ok
    lab.container.systemctl("start", "failme.service", check=False)
    wait_for(lambda: lab.container.systemctl("is-failed", "failme.service",
                                             check=False).stdout.strip() == "failed",
             timeout=20, what="failme.service to fail")
    table = lab.run_once("dryrun", host="container04")
    assert row(table, "services", "failme.service")[0] == "critical"
    lab.container.systemctl("reset-failed", "failme.service")
    for args in (["--dry-run"], ["check", "services"]):
        proc = lab.container.run("/usr/local/bin/tocsin-agent", "--config",
                                 "/etc/tocsin/dryrun.yaml", *args, check=False,
                                 env=sanitizer_env())
        assert_no_sanitizer_errors(proc.stderr, f"tocsin-agent {args}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert row(proc.stdout, "services", "failme.service") == (
            "ok", "failme.service is inactive (dead)")
    table = lab.run_once("dryrun", host="container04")
    assert row(table, "services", "failme.service")[0] == "ok"
    t = next(t for t in lab.server.tickets("all")
             if t["host"] == "container04" and t["item"] == "failme.service")
    assert t["state"] == "ok"


def test_a_chatty_failure_still_fits_the_collector(lab):
    # 100 journal lines of 512 bytes would be over the collector's 64 KiB
    # per context, which would refuse the whole batch: the agent trims
    # the oldest lines instead
    lab.container.systemctl("start", "chatty.service", check=False)
    table = lab.run_once("chatty", host="container03",
                         services_extra="    journal_lines: 100\n")
    assert row(table, "services", "chatty.service")[0] == "critical"
    t = next(t for t in lab.server.tickets("all")
             if t["host"] == "container03" and t["item"] == "chatty.service")
    journal = latest(t, lab.server)["context"]["journal"]
    assert 20 < len(journal) < 100
    # the newest lines stayed (in journald's order of arrival, the unit's
    # own output may come after systemd's lines about it)
    assert any(": line 150 000" in line for line in journal[-5:]), journal[-5:]
    assert not any(": line 1 000" in line for line in journal)


def test_an_ok_the_outbox_could_not_take_is_sent_after_a_restart(lab):
    """The state database cannot grow (a file size limit: what a full disk
    does to it, without a mount inside the container) and the collector
    is away when a failed unit recovers: the ok is held in memory only,
    and the agent stops.  The services check must not have forgotten the
    unit it reported: the next run, with room again, still sends the ok.
    (test_agent_full_disk.py fills a real tmpfs.)"""
    c = lab.container
    c.systemctl("start", "failme.service", check=False)
    wait_for(lambda: c.systemctl("is-failed", "failme.service",
                                 check=False).stdout.strip() == "failed",
             timeout=20, what="failme.service to fail")
    table = lab.run_once("cannotgrow", host="container05")
    assert row(table, "services", "failme.service")[0] == "critical"
    c.systemctl("reset-failed", "failme.service")
    # the collector away too: the ok cannot be sent directly either
    away = lab.agent_config("/etc/tocsin/cannotgrow-away.yaml",
                            state_dir="/var/lib/tocsin-cannotgrow", host="container05")
    c.write(away, c.path(away).read_text().replace(lab.server.url, "http://127.0.0.1:9"))
    # 32 KiB: room for the WAL index (-shm), not for the round's writes;
    # SIGXFSZ ignored: a write past the limit fails with EFBIG instead
    proc = c.run("sh", "-c", 'trap "" XFSZ; ulimit -f 64; exec "$@"', "sh",
                 "/usr/local/bin/tocsin-agent", "--config", away, "--once",
                 check=False, env=sanitizer_env())
    assert_no_sanitizer_errors(proc.stderr, "tocsin-agent --once")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert row(proc.stdout, "services", "failme.service")[0] == "ok"
    assert "outbox: cannot write (" in proc.stderr, proc.stderr
    assert "results held in memory are lost" in proc.stderr, proc.stderr
    table = lab.run_once("cannotgrow", host="container05")
    assert row(table, "services", "failme.service")[0] == "ok"
    t = next(t for t in lab.server.tickets("all")
             if t["host"] == "container05" and t["item"] == "failme.service")
    assert t["state"] == "ok"
