"""Fixtures that run the real Tocsin daemons on loopback.

The server binds port 0 and reports the port through --port-file; readiness
is a real HTTP request, never a fixed sleep.  Binaries come from TOCSIN_BIN
(the sanitizer build when run by `make test`).
"""
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("TOCSIN_BIN", ROOT / "bin"))

AGENT_TOKEN = "agent-token-0123456789abcdef"
TECH_TOKEN = "tech-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


def binary(name):
    path = BIN / name
    assert path.exists(), f"{path} is missing: run make first"
    return str(path)


def assert_no_sanitizer_errors(text, what):
    for marker in SANITIZER_MARKERS:
        assert marker not in text, f"{what} reported a sanitizer error:\n{text}"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class HttpResult:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)


def http(method, url, body=None, token=None, headers=None, timeout=10,
         context=None):
    req = urllib.request.Request(url, method=method, data=body)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return HttpResult(resp.status, resp.read(), resp.headers)
    except urllib.error.HTTPError as err:
        return HttpResult(err.code, err.read(), err.headers)


SERVER_CONFIG = """\
listen: 127.0.0.1:0
database: {db}
{transport}
http:
  max_body: {max_body}
  max_batch: {max_batch}
auth:
  tokens:
    - name: agents
      token: {agent}
      role: agent
    - name: alice
      token: {tech}
      role: technician
    - name: admin
      token: {admin}
      role: admin
"""


def tls_transport(certs, client_ca=False, require_client_cert=False):
    """The tls: section for Server(transport=...) from a tls_certs fixture."""
    text = f"tls:\n  cert: {certs.server_crt}\n  key: {certs.server_key}\n"
    if client_ca:
        text += f"  client_ca: {certs.client_ca}\n"
    if require_client_cert:
        text += "  require_client_cert: true\n"
    return text


class Server:
    """A real tocsin-server on 127.0.0.1 with a SQLite file under tmp.

    Plain HTTP (allow_plain_http: true) unless transport= gives a tls:
    section (see tls_transport()); then url is https:// and requests
    verify the server against ca_file.
    """

    def __init__(self, workdir, max_body="1MiB", max_batch=1000, extra="",
                 transport="allow_plain_http: true", ca_file=None,
                 extra_args=(), prefix=()):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "tocsin.db"
        self.config = self.dir / "server.yaml"
        self.write_config(max_body=max_body, max_batch=max_batch, extra=extra,
                          transport=transport)
        self.port_file = self.dir / "port"
        self.log = self.dir / "server.log"
        self.proc = None
        self.port = None
        self.extra_args = list(extra_args)
        # a command the server runs under (agentlib.system_trust_with())
        self.prefix = list(prefix)
        self.tls = transport.startswith("tls:")
        self.context = None
        if self.tls:
            self.context = ssl.create_default_context(
                cafile=str(ca_file) if ca_file else None)

    def write_config(self, max_body="1MiB", max_batch=1000, extra="",
                     transport="allow_plain_http: true", tokens=None):
        """(Re)write server.yaml; tokens is (agent, tech, admin)."""
        agent, tech, admin = tokens or (AGENT_TOKEN, TECH_TOKEN, ADMIN_TOKEN)
        self.config.write_text(SERVER_CONFIG.format(
            db=self.db, max_body=max_body, max_batch=max_batch,
            transport=transport, agent=agent, tech=tech, admin=admin) + extra)

    def start(self, env=None):
        if self.port_file.exists():
            self.port_file.unlink()
        self.log_fp = open(self.log, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [*self.prefix, binary("tocsin-server"), "--config", str(self.config),
             "--port-file", str(self.port_file), *self.extra_args],
            stdout=self.log_fp, stderr=subprocess.STDOUT, env=full_env)
        wait_for(lambda: self.port_file.exists() and self.port_file.read_text().strip()
                 or self.proc.poll() is not None, what="the server's port file")
        assert self.proc.poll() is None, f"server exited:\n{self.log.read_text()}"
        self.port = int(self.port_file.read_text())
        wait_for(lambda: self._healthy(), what="the server to answer /healthz")
        return self

    def _healthy(self):
        try:
            return self.request("GET", "/healthz", timeout=1).status == 200
        except OSError:
            return False

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, token=None, timeout=10,
                headers=None):
        """Any request; body may be a dict (sent as JSON) or bytes."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        return http(method, self.url + path, body=body, token=token,
                    timeout=timeout, context=self.context, headers=headers)

    def kill(self):
        """SIGKILL, as a crash would; the log is still checked."""
        return self.stop(signal.SIGKILL)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log_fp.close()
        text = self.log.read_text(errors="replace")
        assert_no_sanitizer_errors(text, "tocsin-server")
        if sig == signal.SIGTERM:
            assert rc == 0, f"server exit status {rc}:\n{text}"
        return rc

    # API helpers -------------------------------------------------------
    def get(self, path, token=TECH_TOKEN):
        return self.request("GET", path, token=token)

    def post_events(self, payload, token=AGENT_TOKEN, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        return self.request("POST", "/api/v1/events", body=body, token=token)

    def admin(self, method, path, body=None):
        return self.request(method, path, body=body, token=ADMIN_TOKEN)

    def log_text(self):
        return self.log.read_text(errors="replace")

    def tickets(self, state="all"):
        r = self.get(f"/api/v1/tickets?state={state}")
        assert r.status == 200, r.body
        return r.json()["tickets"]

    def ticket(self, ticket_id):
        r = self.get(f"/api/v1/tickets/{ticket_id}")
        assert r.status == 200, r.body
        return r.json()

    def db_count(self, table):
        con = sqlite3.connect(self.db)
        try:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            con.close()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "server").start()
    yield srv
    srv.stop()


@pytest.fixture
def mailbox():
    """A real SMTP server (aiosmtpd) on loopback that keeps what it gets."""
    from helpdesk_util import Mailbox  # helpdesk_util imports this module

    box = Mailbox().start()
    try:
        yield box
    finally:
        box.stop()


class Certs:
    """PEM files made with openssl for one test session.

    ca_crt signs server_crt (127.0.0.1 and localhost); client_ca signs
    client_crt; rogue_ca signs rogue_crt (a client the server must not
    trust).
    """

    def __init__(self, d):
        self.dir = d
        for name in ("ca", "client_ca", "rogue_ca"):
            self._ca(name)
        self.ca_crt = d / "ca.crt"
        self.server_crt, self.server_key = self._leaf(
            "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.client_crt, self.client_key = self._leaf("client", "client_ca", None)
        self.rogue_crt, self.rogue_key = self._leaf("rogue", "rogue_ca", None)
        self.client_ca = d / "client_ca.crt"

    def issue(self, name, ca, ext=None):
        """Another leaf signed by ca ("ca", "client_ca"), with openssl
        extension lines ext (e.g. "extendedKeyUsage=serverAuth")."""
        return self._leaf(name, ca, ext)

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True,
                       cwd=self.dir)

    def _ca(self, name):
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                      f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                      "-subj", f"/CN=tocsin test {name}")

    def _leaf(self, name, ca, san):
        self._openssl("req", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                      f"{name}.key", "-out", f"{name}.csr", "-subj",
                      f"/CN=tocsin test {name}")
        args = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
                "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{name}.crt",
                "-days", "2"]
        if san:
            (self.dir / f"{name}.ext").write_text(san + "\n")
            args += ["-extfile", f"{name}.ext"]
        self._openssl(*args)
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


DEFAULT_CHECKS = "  disk:\n    discover: false\n"

# Checks on by default that would report on the test machine itself (its
# apt, its missing system bus) and so add tickets a test does not expect,
# or (the heartbeat) one more event to every round: switched off unless
# the test configures them.
QUIET_CHECKS = ("updates", "services", "heartbeat")


def write_agent_config(path, server_url, host="testhost", checks="", extra="",
                       server_extra="", token=AGENT_TOKEN):
    """An agent configuration; server_extra holds more lines of the server
    section (indented by two spaces), token None leaves the token out (the
    agent then uses its enrolled credential)."""
    checks = checks or DEFAULT_CHECKS
    token_line = f"  token: {token}\n" if token else ""
    # Tests count events as they come: repeated samples go at once too,
    # unless the test is about server.hold_repeats.
    hold_line = "" if "hold_repeats" in server_extra else "  hold_repeats: 0s\n"
    for name in QUIET_CHECKS:
        if f"  {name}:" not in checks:
            checks += f"  {name}:\n    enabled: false\n"
    path.write_text(f"""\
host: {host}
state_dir: {path.parent}
server:
  url: {server_url}
{token_line}  timeout: 5s
  allow_plain_http: true
{hold_line}{server_extra}checks:
{checks}
{extra}""")
    return path


def run_agent(config, *args, timeout=60, prefix=()):
    """tocsin-agent --config CONFIG ARGS, or tocsin-agent COMMAND --config
    CONFIG ARGS when the first argument is a subcommand (enroll, ...);
    prefix is a command to run it under (agentlib.system_trust_with)."""
    head = [*prefix, binary("tocsin-agent")]
    if args and not args[0].startswith("-"):
        head.append(args[0])
        args = args[1:]
    proc = subprocess.run([*head, "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout)
    assert_no_sanitizer_errors(proc.stderr, "tocsin-agent")
    return proc


def run_cli(*args, env=None, timeout=30):
    full_env = dict(os.environ)
    full_env.pop("TOCSIN_URL", None)
    full_env.pop("TOCSIN_TOKEN", None)
    full_env.update(env or {})
    proc = subprocess.run([binary("tocsin"), *args], capture_output=True,
                          text=True, timeout=timeout, env=full_env)
    assert_no_sanitizer_errors(proc.stderr, "tocsin")
    return proc
