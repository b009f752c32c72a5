"""Helpers for the agent check tests: real tmpfs mounts, real agent runs.

Nothing here is mocked: a tmpfs is a real file system with real statvfs
figures, and every check runs inside the real tocsin-agent binary.
"""
import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import assert_no_sanitizer_errors, binary

MiB = 1024 * 1024


@contextlib.contextmanager
def tmpfs(path, size="16m"):
    """Mount a tmpfs of size at path (needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                    "tocsin-test", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def write_file(path, size, touch=None):
    """A real file of size bytes; touch: a `touch -d` date for its mtime."""
    with open(path, "wb") as fp:
        fp.write(b"\x5a" * size)
        fp.flush()
        os.fsync(fp.fileno())
    if touch is not None:
        subprocess.run(["touch", "-d", touch, str(path)], check=True)
    return path


def agent_config(path, checks, state_dir=None):
    """An agent configuration for one-shot runs (nothing is delivered)."""
    path.write_text(f"""\
host: checkhost
state_dir: {state_dir or path.parent / 'state'}
server:
  url: https://127.0.0.1:9
  token: unused-token-0123456789
checks:
{checks}""")
    return path


def run_check(config, *names, env=None, timeout=60):
    """tocsin-agent --config CONFIG check NAMES...; stderr is checked for
    sanitizer reports."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([binary("tocsin-agent"), "--config", str(config),
                           "check", *names], capture_output=True, text=True,
                          timeout=timeout, env=full_env)
    assert_no_sanitizer_errors(proc.stderr, "tocsin-agent")
    return proc


def rows(stdout):
    """The table's result lines as {item: (check, state, summary)}."""
    out = {}
    lines = stdout.splitlines()
    assert lines and lines[0].startswith("CHECK"), stdout
    state_col = lines[0].index("STATE")
    summary_col = lines[0].index("SUMMARY")
    item_col = lines[0].index("ITEM")
    for line in lines[1:]:
        if not line[:item_col].strip():
            continue  # a metrics line
        check = line[:item_col].strip()
        item = line[item_col:state_col].strip()
        state = line[state_col:summary_col].strip()
        out[item] = (check, state, line[summary_col:])
    return out


def metrics_of(stdout, item):
    """The metrics line under item, as {name: value text}."""
    lines = stdout.splitlines()
    item_col = lines[0].index("ITEM")
    state_col = lines[0].index("STATE")
    for i, line in enumerate(lines[1:], 1):
        if line[:item_col].strip() and line[item_col:state_col].strip() == item:
            if i + 1 < len(lines) and not lines[i + 1][:item_col].strip():
                parts = lines[i + 1].split()
                return {p.split("=", 1)[0]: p.split("=", 1)[1]
                        for p in parts if "=" in p}
            return {}
    raise AssertionError(f"no row for {item}:\n{stdout}")


def pid_dead(pid):
    """True when pid is gone or a zombie (killed, waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fp:
            return fp.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def check_config(config):
    """tocsin-agent --config CONFIG --check-config."""
    proc = subprocess.run([binary("tocsin-agent"), "--config", str(config),
                           "--check-config"], capture_output=True, text=True,
                          timeout=30)
    assert_no_sanitizer_errors(proc.stderr, "tocsin-agent")
    return proc


@contextlib.contextmanager
def agent_daemon(config, log_path):
    """The real agent as a daemon for the body of the with; then SIGTERM,
    and it must stop cleanly without sanitizer reports."""
    log = open(log_path, "wb")
    agent = subprocess.Popen([binary("tocsin-agent"), "--config", str(config)],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        yield agent
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            rc = agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            rc = agent.wait()
        log.close()
    text = Path(log_path).read_text(errors="replace")
    assert_no_sanitizer_errors(text, "tocsin-agent")
    assert rc == 0, text
