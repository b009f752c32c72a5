"""The tocsin CLI against what it must not trust: text from agents and
technicians that would drive the terminal, a token that would leak or
inject headers, and answers too large or of the wrong shape."""
import json
import os
import pty
import sqlite3
import subprocess
import threading
import uuid
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import TECH_TOKEN, binary, run_cli, wait_for
from helpdesk_util import act

# Clear the screen, set the window title, write the clipboard (OSC 52),
# return to the line's start and erase it; then the C1 forms of CSI and OSC.
EVIL = ("disk full\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07\r\x1b[K"
        "all good \u009b2J\u009d0;x\u0007 \x7f")
UNSAFE = ["\x1b", "\x07", "\r", "\x7f", "\u009b", "\u009d"]


def cli(url, *args, env=None):
    """tocsin against url with a technician's token and an empty HOME."""
    full = {"TOCSIN_URL": url, "TOCSIN_TOKEN": TECH_TOKEN, "HOME": "/nonexistent"}
    full.update(env or {})
    return run_cli(*args, env=full)


def assert_safe(text):
    for ch in UNSAFE:
        assert ch not in text, f"{ch!r} reached the terminal: {text!r}"


def test_text_from_the_server_cannot_drive_the_terminal(server):
    r = server.post_events({"host": "web01", "events": [{
        "id": str(uuid.uuid4()), "check": "disk", "item": "/srv", "state": "critical",
        "summary": EVIL, "observed_at": "2026-12-02T14:00:00Z"}]})
    assert r.status == 200, r.body
    tid = server.tickets("open")[0]["id"]
    r = act(server, tid, {"action": "comment", "text": "see\x1b]52;c;cm0gLXJmIH4=\x07 this\nnext line"})
    assert r.status == 200, r.body
    r = cli(server.url, "silence", "add", "--host", "web01", "--duration", "1h",
            "--comment", "maint\x1b[2J")
    assert r.returncode == 0, r.stderr
    assert_safe(r.stdout)

    for args in (["tickets"], ["ticket", str(tid)], ["silence", "list"]):
        r = cli(server.url, *args)
        assert r.returncode == 0, r.stderr
        assert_safe(r.stdout)
    r = cli(server.url, "ticket", str(tid))
    assert "disk full?[2J?]0;pwned??]52;c;ZWNobyBoaQ==? ?[Kall good ?2J?0;x? ?" in r.stdout
    # line breaks and tabs are text: a comment keeps its lines
    assert "see?]52;c;cm0gLXJmIH4=? this\nnext line" in r.stdout
    # --json is the answer as it is; JSON escapes the control characters
    r = cli(server.url, "ticket", str(tid), "--json")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    # the comment is stored as written: the escapes above were the CLI's to defuse
    con = sqlite3.connect(server.db)
    try:
        texts = [t for (t,) in con.execute("SELECT text FROM journal WHERE ticket_id = ?", (tid,))]
    finally:
        con.close()
    assert any("\x1b]52;c;cm0gLXJmIH4=\x07" in (t or "") for t in texts), texts
    # (the collector itself already turned the summary's C0 controls into
    # '?' at ingest; the comment above reached the CLI with its escapes)
    summary = json.loads(r.stdout)["summary"]
    assert not any(c < " " and c not in "\t\n" or c == "\x7f" for c in summary), repr(summary)


class FakeApi(BaseHTTPRequestHandler):
    """A stand-in for tocsin-server: the real one never sends these answers
    (huge, of the wrong shape, an error with escapes), so a test of the
    CLI's defence against them needs a server that does."""
    answers = {}     # path without the query -> (status, body bytes)
    headers_seen = []
    hold = None      # an Event the answer waits for, when set

    def log_message(self, *args):
        pass

    def answer(self):
        FakeApi.headers_seen.append(self.headers.get_all("Authorization") or [])
        if FakeApi.hold is not None:
            FakeApi.hold.wait(timeout=30)
        path = self.path.split("?")[0]
        status, body = FakeApi.answers.get(path, (404, b'{"error": "no such path"}'))
        if body == "huge":
            self.send_response(200)
            self.send_header("Content-Length", str(70 << 20))
            self.end_headers()
            self.stream(70)
        elif body == "huge-unannounced":
            # no Content-Length: the body ends when the connection does
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.end_headers()
            self.stream(70)
            self.close_connection = True
        else:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def stream(self, mib):
        chunk = b" " * (1 << 20)
        try:
            for _ in range(mib):
                self.wfile.write(chunk)
        except OSError:
            pass  # the CLI hung up, as it should

    do_GET = do_POST = do_PUT = do_DELETE = answer


@pytest.fixture
def fake():
    FakeApi.answers = {}
    FakeApi.headers_seen = []
    FakeApi.hold = None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_an_error_message_cannot_drive_the_terminal(fake):
    FakeApi.answers["/api/v1/tickets/1"] = (409, json.dumps({"error": "busy\x1b[2J\x1b]52;c;eA==\x07"}).encode())
    r = cli(fake.url, "ticket", "1")
    assert r.returncode == 1
    assert "HTTP 409: busy?[2J?]52;c;eA==?" in r.stderr
    assert_safe(r.stderr)


def test_json_on_a_terminal_escapes_c1_controls(fake):
    """--json on a terminal: JSON escapes C0 controls itself; a C1 control
    (U+009B, CSI for some terminals) is escaped as well.  Into a pipe the
    answer stays as it is."""
    FakeApi.answers["/api/v1/tickets/1"] = (200, json.dumps({"id": 1, "summary": "a\u009b2Jb \u00e9"}).encode())
    primary, secondary = pty.openpty()
    env = {**os.environ, "TOCSIN_URL": fake.url, "TOCSIN_TOKEN": TECH_TOKEN, "HOME": "/nonexistent"}
    proc = subprocess.Popen([binary("tocsin"), "ticket", "1", "--json"], stdout=secondary,
                            stderr=subprocess.PIPE, env=env)
    os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    proc.stderr.close()
    text = out.decode()
    assert "\u009b" not in text
    assert '"summary": "a\\u009B2Jb \\u00E9"' in text
    r = cli(fake.url, "ticket", "1", "--json")
    assert json.loads(r.stdout)["summary"] == "a\u009b2Jb \u00e9"
    assert "\u00e9" in r.stdout


@pytest.mark.parametrize("kind", ["huge", "huge-unannounced"])
def test_an_answer_over_the_limit_is_named_so(fake, kind):
    FakeApi.answers["/api/v1/tickets"] = (200, kind)
    r = cli(fake.url, "tickets")
    assert r.returncode == 1
    assert r.stderr.strip() == (f"tocsin: the answer from {fake.url}/api/v1/tickets?state=open"
                                "&limit=100&children=false is larger than 64 MiB")


# Each command, the path it asks, and an answer of the wrong shape.
WRONG_SHAPES = [
    (["tickets"], "/api/v1/tickets", {"tickets": "lots"}, "tickets should be an array"),
    (["tickets"], "/api/v1/tickets", {"tickets": [1, 2]}, "tickets[0] should be an object"),
    (["ticket", "1"], "/api/v1/tickets/1", {"tickets": "lots"}, "id should be an integer"),
    (["ticket", "1"], "/api/v1/tickets/1", {"id": 1, "journal": {}, "occurrences": []},
     "journal should be an array"),
    (["ack", "1"], "/api/v1/tickets/1/actions", ["ok"], "id should be an integer"),
    (["silence", "list"], "/api/v1/silences", {"silences": {}}, "silences should be an array"),
    (["silence", "remove", "3"], "/api/v1/silences/3", {"removed": True}, "id should be an integer"),
    (["traps", "unknown"], "/api/v1/traps/unknown", {"traps": []}, "kept should be an integer"),
    (["audit"], "/api/v1/audit", {"audit": None}, "audit should be an array"),
    (["credential", "list"], "/api/v1/credentials", {}, "credentials should be an array"),
    (["credential", "revoke", "4"], "/api/v1/credentials/4", {"revoked_at": 5},
     "revoked_at should be a string"),
    (["enrollment", "list"], "/api/v1/enrollment-tokens", {"enrollment_tokens": "x"},
     "enrollment_tokens should be an array"),
    (["enrollment", "create", "--customer", "acme"], "/api/v1/enrollment-tokens",
     {"id": 1}, "token should be a string"),
    (["enrollment", "approvals"], "/api/v1/enrollment-approvals",
     {"enrollment_approvals": ["x"]}, "enrollment_approvals[0] should be an object"),
    (["enrollment", "approve", "web01"], "/api/v1/enrollment-approvals", {},
     "id should be an integer"),
    (["account", "list"], "/api/v1/accounts", {"accounts": 3}, "accounts should be an array"),
    (["account", "delete", "bob"], "/api/v1/accounts/bob", {"ok": 1},
     "deleted should be a string"),
]


@pytest.mark.parametrize("args,path,answer,why", WRONG_SHAPES,
                         ids=[" ".join(w[0]) + ": " + w[3] for w in WRONG_SHAPES])
def test_an_answer_of_the_wrong_shape_is_an_error(fake, args, path, answer, why):
    FakeApi.answers[path] = (200, json.dumps(answer).encode())
    r = cli(fake.url, *args)
    assert r.returncode == 1, r.stdout
    assert r.stderr.strip() == f"tocsin: unexpected answer from the server: {why}"
    assert r.stdout == ""


def test_the_right_shape_still_prints(fake):
    """The checks above refuse only what is wrong: an answer of the right
    shape prints, and --json prints any answer as it is."""
    FakeApi.answers["/api/v1/tickets"] = (200, b'{"tickets": []}')
    r = cli(fake.url, "tickets")
    assert (r.returncode, r.stdout) == (0, "no open tickets\n"), r.stderr
    FakeApi.answers["/api/v1/tickets/1"] = (200, b'{"tickets": "lots"}')
    r = cli(fake.url, "ticket", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"tickets": "lots"}


FILE_TOKEN = "file-token-0123456789abcdef"


def write_private(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_token_file(fake, tmp_path):
    FakeApi.answers["/api/v1/tickets"] = (200, b'{"tickets": []}')
    tok = write_private(tmp_path / "token", FILE_TOKEN + "\n")
    r = cli(fake.url, "--token-file", str(tok), "tickets")
    assert r.returncode == 0, r.stderr
    assert FakeApi.headers_seen[-1] == [f"Bearer {FILE_TOKEN}"]
    # the same from cli.yaml's token_file:
    conf = tmp_path / "cli.yaml"
    conf.write_text(f"url: {fake.url}\ntoken_file: {tok}\n")   # no token in it: 0644 is fine
    r = run_cli("--config", str(conf), "tickets", env={"HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert FakeApi.headers_seen[-1] == [f"Bearer {FILE_TOKEN}"]
    # --token and --token-file are two ways to say one thing
    r = cli(fake.url, "--token", TECH_TOKEN, "--token-file", str(tok), "tickets")
    assert r.returncode == 2 and "--token or --token-file, not both" in r.stderr
    both = tmp_path / "both.yaml"
    write_private(both, f"url: {fake.url}\ntoken: {TECH_TOKEN}\ntoken_file: {tok}\n")
    r = run_cli("--config", str(both), "tickets", env={"HOME": str(tmp_path)})
    assert r.returncode == 2 and "token and token_file are mutually exclusive" in r.stderr


def test_a_token_others_can_read_is_refused(fake, tmp_path):
    FakeApi.answers["/api/v1/tickets"] = (200, b'{"tickets": []}')
    tok = write_private(tmp_path / "token", TECH_TOKEN + "\n", 0o644)
    r = cli(fake.url, "--token-file", str(tok), "tickets")
    assert r.returncode == 2
    assert r.stderr == (f"tocsin: {tok} holds a token but its mode 0644 lets other users "
                        f"read or change it: run chmod 600 {tok}\n")
    conf = write_private(tmp_path / "cli.yaml", f"url: {fake.url}\ntoken: {TECH_TOKEN}\n", 0o640)
    r = run_cli("--config", str(conf), "tickets", env={"HOME": str(tmp_path)})
    assert r.returncode == 2
    assert f"tocsin: {conf} holds a token but its mode 0640" in r.stderr
    # the same file found in HOME without --config
    (tmp_path / ".config" / "tocsin").mkdir(parents=True)
    home_conf = write_private(tmp_path / ".config" / "tocsin" / "cli.yaml", conf.read_text(), 0o604)
    r = run_cli("tickets", env={"HOME": str(tmp_path)})
    assert r.returncode == 2 and f"tocsin: {home_conf} holds a token but its mode 0604" in r.stderr
    # a file whose token the environment overrides is not read for it
    r = run_cli("tickets", env={"HOME": str(tmp_path), "TOCSIN_TOKEN": TECH_TOKEN})
    assert r.returncode == 0, r.stderr
    assert len(FakeApi.headers_seen) == 1, "a refused token was sent"


@pytest.mark.parametrize("token,shown", [
    (TECH_TOKEN + "\r\nX-Injected: yes", "byte 0x0d at offset 27"),
    (TECH_TOKEN + "\nX-Injected: yes", "byte 0x0a at offset 27"),
    (TECH_TOKEN + "\t", "byte 0x09 at offset 27"),
])
def test_a_token_with_control_characters_is_refused(fake, tmp_path, token, shown):
    FakeApi.answers["/api/v1/tickets"] = (200, b'{"tickets": []}')
    r = cli(fake.url, "tickets", env={"TOCSIN_TOKEN": token})
    assert r.returncode == 2
    assert r.stderr == (f"tocsin: the token from TOCSIN_TOKEN holds a control character "
                        f"({shown}): a token is one line of printable characters\n")
    # from a file, one trailing newline is the file's, anything more the token's
    tok = write_private(tmp_path / "token", token + "\n")
    r = cli(fake.url, "--token-file", str(tok), "tickets")
    assert r.returncode == 2
    assert f"tocsin: the token from {tok} holds a control character ({shown})" in r.stderr
    r = cli(fake.url, "--token", token, "tickets")
    assert r.returncode == 2 and "the token from --token holds a control character" in r.stderr
    assert FakeApi.headers_seen == [], "the token went out"


def test_an_empty_token_file_is_refused(fake, tmp_path):
    tok = write_private(tmp_path / "token", "\n")
    r = cli(fake.url, "--token-file", str(tok), "tickets")
    assert r.returncode == 2 and r.stderr == f"tocsin: the token from {tok} is empty\n"
    r = cli(fake.url, "--token-file", str(tmp_path / "absent"), "tickets")
    assert r.returncode == 2
    assert f"tocsin: cannot read the token file {tmp_path / 'absent'}: No such file" in r.stderr


def test_token_given_with_token_leaves_the_command_line(fake):
    """--token is in /proc/PID/cmdline until tocsin starts: it overwrites
    it then, so that the window is short (the help says to prefer a file)."""
    FakeApi.answers["/api/v1/tickets"] = (200, b'{"tickets": []}')
    FakeApi.hold = threading.Event()
    env = {**os.environ, "TOCSIN_URL": fake.url, "HOME": "/nonexistent"}
    proc = subprocess.Popen([binary("tocsin"), "--token", FILE_TOKEN, "tickets"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        wait_for(lambda: FakeApi.headers_seen, what="the CLI's request")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        FakeApi.hold.set()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert FakeApi.headers_seen == [[f"Bearer {FILE_TOKEN}"]]
    assert FILE_TOKEN.encode() not in cmdline
    assert b"--token\0" + b"x" * len(FILE_TOKEN) + b"\0tickets" in cmdline


def test_help_says_token_is_visible():
    r = run_cli("--help")
    assert r.returncode == 0
    assert "--token-file FILE" in r.stdout
    assert "--token shows the token to every user of this machine" in r.stdout
