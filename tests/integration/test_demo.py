"""make demo's script (tests/demo.sh) as a new user runs it: a real
collector and a real agent on this machine, the disk ticket the thresholds
make, and the console account it prints; then the demo's collector is
stopped."""
import json
import os
import re
import signal
import subprocess
import urllib.request

from conftest import ROOT


def test_demo_shows_the_disk_ticket_and_a_console_login(tmp_path):
    env = dict(os.environ, TOCSIN_DEMO_DIR=str(tmp_path / "demo"))
    run = subprocess.run([str(ROOT / "tests" / "demo.sh")], env=env, capture_output=True,
                         text=True, timeout=240)
    pid_file = tmp_path / "demo" / "server.pid"
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        assert re.search(r"^Ticket #\d+: disk / on ", run.stdout, re.M), run.stdout
        login = re.search(r"open (http://127\.0\.0\.1:\d+)/ and log in as demo, password (\S+)",
                          run.stdout)
        assert login, run.stdout
        url, password = login.groups()
        req = urllib.request.Request(
            url + "/api/v1/session", method="POST",
            data=json.dumps({"name": "demo", "password": password}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as answer:
            assert answer.status == 201
            assert "tocsin_session=" in answer.headers["Set-Cookie"]
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
