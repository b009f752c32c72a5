"""What checks hand on: valid text to the collector, nothing of the agent's
to their children.

Mount points may hold any bytes (Latin-1 names, a newline): the real
agent must still deliver every result, with items and summaries the
collector accepts.  And the agent holds descriptors its children must not
inherit (libcurl's sockets are not close-on-exec; here a socket the test
hands the agent without close-on-exec stands for them, so that the test
does not depend on libcurl's habits): apt-config, apt-get and a plugin,
each spawned by the real daemon, list their descriptors and must see only
0, 1 and 2.
"""
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from conftest import assert_no_sanitizer_errors, binary, run_agent, wait_for, write_agent_config


def test_mount_points_with_any_bytes_are_delivered(server, tmp_path):
    # two devices, since bind mounts of one are reported once: tmp_path's
    # and the tmpfs of /dev/shm
    shm = Path(tempfile.mkdtemp(prefix="tocsin-hygiene-", dir="/dev/shm"))
    latin1 = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    newline = str(shm / "a\nb")
    for d in (latin1, newline):
        os.mkdir(d)
    # as the kernel writes /proc/self/mounts: other bytes as they are,
    # a newline escaped as \012
    mounts = tmp_path / "mounts"
    mounts.write_bytes(b"tocsin-test " + os.fsencode(latin1) + b" ext4 rw 0 0\n"
                       b"tocsin-test " + os.fsencode(str(shm)) + b"/a\\012b ext4 rw 0 0\n")
    config = write_agent_config(tmp_path / "agent.yaml", server.url, host="bytes01",
                                checks=f"  disk:\n    mounts_file: {mounts}\n"
                                       "    warning: 0%\n    predict: false\n")
    try:
        run = run_agent(config, "--once")
    finally:
        shutil.rmtree(shm)
    # an event json_pack refused was dropped without a word; an item with a
    # control character made the collector refuse the whole batch
    assert run.returncode == 0, run.stdout + run.stderr
    assert "delivered 2 events" in run.stdout, run.stdout
    items = sorted(t["item"] for t in server.tickets("open") if t["host"] == "bytes01")
    assert items == sorted([f"{shm}/a b", f"{tmp_path}/caf?"]), items
    for t in server.tickets("open"):
        assert t["summary"].startswith(t["item"] + ": "), t["summary"]


FD_LISTER = """\
#!/usr/bin/python3 -S
import os, sys
# listed before anything else is opened: 0-2 and the one listdir reads
fds = " ".join(sorted(os.listdir("/proc/self/fd"), key=int))
with open({out!r}, "w") as fp:
    fp.write(fds)
{tail}
"""


def lister(path, out, tail):
    path.write_text(FD_LISTER.format(out=str(out), tail=tail))
    path.chmod(0o755)
    return path


def fd_flags(pid, fd):
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError(f"no flags for fd {fd} of {pid}")


def test_children_see_only_0_1_2_while_the_agent_holds_a_socket(server, tmp_path):
    apt_config = lister(tmp_path / "apt-config", tmp_path / "fds-apt-config",
                        "print('APT::Periodic::Unattended-Upgrade \"0\";')")
    apt_get = lister(tmp_path / "apt-get", tmp_path / "fds-apt-get", "")
    plugin = lister(tmp_path / "plugin", tmp_path / "fds-plugin",
                    "print('WARNING - listed'); sys.exit(1)")
    # apt_refresh 0s: apt runs every apt_interval, changed inputs or not
    checks = (f"  updates:\n    interval: 1s\n    apt_interval: 5s\n    apt_refresh: 0s\n"
              f"    apt_get: {apt_get}\n    apt_config: {apt_config}\n"
              f"    lists_dir: {tmp_path}\n    history_log: ''\n    dpkg_log: ''\n"
              f"  plugin:\n    plugins:\n      - {{name: fds, command: [{plugin}], interval: 1s}}\n")
    config = write_agent_config(tmp_path / "agent.yaml", server.url, host="fds01",
                                checks=checks)
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    held.listen()
    log_path = tmp_path / "agent.log"
    with open(log_path, "wb") as log:
        # pass_fds clears close-on-exec: the agent holds it as curl would
        agent = subprocess.Popen([binary("tocsin-agent"), "--config", str(config)],
                                 stdout=log, stderr=subprocess.STDOUT,
                                 pass_fds=[held.fileno()])
    try:
        fd = held.fileno()
        assert os.readlink(f"/proc/{agent.pid}/fd/{fd}").startswith("socket:")
        assert fd_flags(agent.pid, fd) & os.O_CLOEXEC == 0
        # the plugin runs again after the first delivery, when libcurl's
        # own connection to the collector is open as well
        wait_for(lambda: any(t["host"] == "fds01" and t["item"] == "fds"
                             for t in server.tickets("all")),
                 timeout=30, what="the first delivery")
        for name in ("fds-apt-config", "fds-apt-get", "fds-plugin"):
            (tmp_path / name).unlink(missing_ok=True)
        for name in ("fds-apt-config", "fds-apt-get", "fds-plugin"):
            wait_for(lambda: (tmp_path / name).exists() and
                     (tmp_path / name).read_text(), timeout=30, what=f"{name}")
            assert (tmp_path / name).read_text() == "0 1 2 3", name
        assert os.readlink(f"/proc/{agent.pid}/fd/{fd}").startswith("socket:")
    finally:
        agent.terminate()
        rc = agent.wait(timeout=20)
        held.close()
    text = log_path.read_text()
    assert_no_sanitizer_errors(text, "tocsin-agent")
    assert rc == 0, text
