"""Helpers for the agent's delivery tests: the real agent as a daemon, its
outbox read from its real SQLite file, a stalling HTTP proxy in front of the
real server, TLS certificates made with openssl, and a TLS front end
(Python's ssl over http.server) in front of the real server.

The proxy and the TLS front end are real peers on real sockets: they forward
to the real tocsin-server and only add what the test needs (a stall, TLS).
"""
import http.client
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import assert_no_sanitizer_errors, binary, wait_for


class Agent:
    """tocsin-agent in daemon mode, its log in a file."""

    def __init__(self, config, env=None):
        self.config = Path(config)
        self.state_dir = self.config.parent
        self.log = self.state_dir / "agent.log"
        self.env = env
        self.proc = None

    def start(self):
        self.log_fp = open(self.log, "ab")
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = subprocess.Popen([binary("tocsin-agent"), "--config", str(self.config)],
                                     stdout=self.log_fp, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: b"started for host" in self.log.read_bytes() or
                 self.proc.poll() is not None, what="the agent to start")
        assert self.proc.poll() is None, self.text()
        return self

    def text(self):
        return self.log.read_text(errors="replace")

    def wait_log(self, needle, timeout=20):
        wait_for(lambda: needle in self.text(), timeout=timeout,
                 what=f"'{needle}' in the agent's log")

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.proc = None
        self.log_fp.close()
        if sig != signal.SIGKILL:
            assert_no_sanitizer_errors(self.text(), "tocsin-agent")
        return rc

    # the real outbox, read from the agent's SQLite file -------------
    def _query(self, sql):
        db = self.state_dir / "agent.db"
        if not db.exists():
            return []
        con = sqlite3.connect(db, timeout=10)
        try:
            return con.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []  # tables not created yet
        finally:
            con.close()

    def outbox_ids(self):
        return {row[0] for row in self._query("SELECT id FROM outbox_events")}

    def outbox_count(self):
        rows = self._query("SELECT count(*) FROM outbox_events")
        return rows[0][0] if rows else 0

    def outbox_meta(self):
        rows = self._query("SELECT dropped_repeats, dropped_changes, rejected, report_id"
                           " FROM outbox_meta")
        keys = ("dropped_repeats", "dropped_changes", "rejected", "report_id")
        return dict(zip(keys, rows[0])) if rows else {}


def server_event_ids(server):
    """Every event id in the server's SQLite file, as UUID text."""
    con = sqlite3.connect(server.db)
    try:
        return [str(uuid.UUID(bytes=row[0])) for row in con.execute("SELECT id FROM events")]
    finally:
        con.close()


def occurrences_match_events(server):
    """Per ticket: (occurrences, linked events); they must be equal."""
    con = sqlite3.connect(server.db)
    try:
        return con.execute(
            "SELECT t.occurrences, (SELECT count(*) FROM events e WHERE e.ticket_id = t.id)"
            " FROM tickets t").fetchall()
    finally:
        con.close()


def pin_server_port(server):
    """Rewrite the server's configuration to keep its current port across
    a restart, so an agent configured with its URL finds it again."""
    text = server.config.read_text()
    server.config.write_text(text.replace("listen: 127.0.0.1:0",
                                          f"listen: 127.0.0.1:{server.port}"))


class Proxy:
    """An HTTP(S) front end that forwards requests to the real server.

    mode: "pass" forwards; "stall_before" keeps the request without
    forwarding it; "stall_after" forwards it (the server commits) and then
    never answers; "fail503" answers 503 without forwarding.  The bodies
    seen are kept in .bodies.
    """

    def __init__(self, target_url, tls_context=None, port=0):
        self.target = target_url
        self.mode = "pass"
        self.bodies = []
        self.stalled = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.bodies.append(body)
                mode = proxy.mode
                if mode == "stall_before":
                    proxy.stalled.set()
                    proxy.release.wait(60)
                    return
                if mode == "fail503":
                    status, headers = 503, [("Content-Type", "application/json")]
                    answer = b'{"error": "the store is unavailable, retry later"}'
                else:
                    status, headers, answer = proxy.forward(self, body)
                if mode == "stall_after":
                    proxy.stalled.set()
                    proxy.release.wait(60)
                    return
                self.send_response(status)
                for k, v in headers:
                    if k.lower() in ("content-type", "retry-after"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def forward(self, handler, body):
        host, port = self.target.split("//")[1].split(":")
        con = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        con.request("POST", handler.path, body=body, headers=headers)
        resp = con.getresponse()
        answer = resp.read()
        con.close()
        return resp.status, resp.getheaders(), answer

    def ids_in(self, index):
        return [e["id"] for e in json.loads(self.bodies[index])["events"]]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# certificates, made with the openssl command line --------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class CertFactory:
    """A directory of CAs and leaf certificates (EC P-256, openssl CLI)."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def ca(self, name):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                 "-subj", f"/CN={name}", "-days", "30", cwd=self.dir)
        return self.dir / f"{name}.pem"

    def leaf(self, name, ca, san="IP:127.0.0.1", days=30, client=False):
        (self.dir / f"{name}.ext").write_text(
            f"subjectAltName={san}\n"
            f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                 cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                 f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem",
                 "-days", str(days), "-extfile", f"{name}.ext", cwd=self.dir)
        return self.dir / f"{name}.pem", self.dir / f"{name}.key"

    def pin(self, cert):
        """curl's sha256//BASE64 of the certificate's public key."""
        pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
                             check=True, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                             check=True, capture_output=True).stdout
        digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                                check=True, capture_output=True).stdout
        import base64
        return "sha256//" + base64.b64encode(digest).decode()


def tls_server_context(cert, key, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(client_ca))
    return ctx


# the system trust directory, changed for one program only -------------------

SYSTEM_CA_DIR = Path("/etc/ssl/certs")


def system_trust_with(workdir, *cas):
    """A command prefix (for run_agent's prefix) that runs a program in a
    private mount namespace where the system trust directory, /etc/ssl/certs
    (libcurl's compiled-in CA path on Debian), holds the given CA
    certificates besides its own, each under its OpenSSL hash name, as
    update-ca-certificates would leave them.  The real directory is not
    touched: a copy in workdir is bind-mounted over it, for the program and
    its children only.  Skips the test when no mount namespace can be made
    (not root and no user namespaces)."""
    assert cas, "system_trust_with: which CAs?"
    stage = Path(workdir) / "system-certs"
    shutil.copytree(SYSTEM_CA_DIR, stage, symlinks=True)
    probes = []
    for ca in cas:
        name = Path(ca).name
        shutil.copy(ca, stage / name)
        digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(ca)],
                                check=True, capture_output=True, text=True).stdout.strip()
        n = 0
        while (stage / f"{digest}.{n}").is_symlink():
            n += 1
        (stage / f"{digest}.{n}").symlink_to(name)
        probes.append(str(SYSTEM_CA_DIR / f"{digest}.{n}"))
    # as root a mount namespace is enough; otherwise one owned by a user
    # namespace where we are root
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    prefix = [*unshare, "--", "sh", "-c",
              f'mount --bind "$0" {SYSTEM_CA_DIR} && exec "$@"', str(stage)]
    try:
        probe = subprocess.run([*prefix, "ls", "--", *probes],
                               capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no unshare(1) to make a private mount namespace")
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount a trust directory over {SYSTEM_CA_DIR} in a "
                    f"private mount namespace ({' '.join(unshare)}): "
                    f"{probe.stderr.strip() or 'exit ' + str(probe.returncode)}")
    return prefix
