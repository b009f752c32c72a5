"""The apt simulation runs in the background of the agent daemon.

After the first round the updates check starts apt-get on its own interval
as a child process and reports when it finishes, while the agent keeps
running its other checks.  The real apt is tested in a container
(test_systemd_checks.py); here the machine's apt state cannot be changed
between runs, so a small script stands in for apt-get: it prints real
`apt-get -s` lines, one more package each run, and takes two seconds.
"""
import signal
import subprocess

from conftest import assert_no_sanitizer_errors, binary, wait_for, write_agent_config

FAKE_APT = """\
#!/bin/sh
# one more upgradable package per run, slowly
n=$(cat {count} 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > {count}
sleep 2
i=1
while [ $i -le $n ]; do
    echo "Inst pkg$i [1.0] (1.1 Debian-Security:12/oldstable-security [amd64])"
    i=$((i + 1))
done
"""


def test_apt_runs_in_the_background_and_reports_when_done(server, tmp_path):
    apt = tmp_path / "apt-get"
    apt.write_text(FAKE_APT.format(count=tmp_path / "count"))
    apt.chmod(0o755)
    checks = (f"  disk:\n    interval: 1s\n    discover: false\n"
              f"    mounts:\n      - path: {tmp_path}\n        warning: 0%\n"
              f"  updates:\n    interval: 1s\n    apt_interval: 5s\n"
              f"    apt_get: {apt}\n    apt_config: /bin/true\n"
              f"    lists_dir: {tmp_path}\n    history_log: ''\n    dpkg_log: ''\n")
    config = write_agent_config(tmp_path / "agent.yaml", server.url, host="bg01",
                                checks=checks)
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([binary("tocsin-agent"), "--config", str(config)],
                             stdout=log, stderr=subprocess.STDOUT)

    def ticket(item):
        return next((t for t in server.tickets("all") if t["item"] == item), None)

    def latest_summary(item):
        return server.ticket(ticket(item)["id"])["occurrences"][0]["summary"]

    def disk_count():
        t = ticket(str(tmp_path))
        return t["occurrence_count"] if t else 0

    try:
        # a warning each second: the disk ticket's occurrences show the
        # agent's loop turning
        wait_for(lambda: disk_count() > 0, timeout=30, what="the disk ticket")
        # the first round waited for apt: one package
        wait_for(lambda: ticket("security"), timeout=30, what="the first apt round")
        assert latest_summary("security").startswith("1 security update: pkg1 ")
        # the second run comes 5 s later, takes 2 s, and reports at its end;
        # meanwhile the disk check keeps its 1 s interval
        wait_for(lambda: (tmp_path / "count").read_text().strip() == "2", timeout=20,
                 what="the second apt run to start")
        during = disk_count()
        # a blocking apt would hold both back and deliver them together
        wait_for(lambda: disk_count() > during and
                 latest_summary("security").startswith("1 security update: "),
                 timeout=10, what="disk results while apt is still running")
        wait_for(lambda: latest_summary("security").startswith("2 security updates: "),
                 timeout=20, what="the background run's result")
    finally:
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=20)
        log.close()
    text = (tmp_path / "agent.log").read_text()
    assert_no_sanitizer_errors(text, "tocsin-agent")
    assert rc == 0, text
