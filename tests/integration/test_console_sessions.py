"""The console's accounts and sessions over the real API: password hashing,
cookies, CSRF, expiry, rate limiting, audit, logout."""
import hashlib
import os
import errno
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import ADMIN_TOKEN, TECH_TOKEN, Server, binary, run_cli, wait_for
from console_util import (PASSWORD, Session, audit, create_account,
                          login_request, open_ticket)


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "server").start()
    yield srv
    srv.stop()


def stored_hash(server, name):
    con = sqlite3.connect(server.db)
    try:
        return con.execute("SELECT password_hash FROM accounts WHERE name = ?",
                           (name,)).fetchone()[0]
    finally:
        con.close()


def test_accounts_are_created_by_admins_with_argon2id_hashes(server):
    r = create_account(server, "carol")
    assert r.status == 201 and r.json() == {"name": "carol", "role": "technician"}
    h = stored_hash(server, "carol")
    assert h.startswith("$argon2id$v=19$m=65536,t=2,p=1$")
    assert PASSWORD not in h
    # Replacing is 200; the list never shows hashes.
    assert create_account(server, "carol", role="viewer").status == 200
    accounts = server.admin("GET", "/api/v1/accounts").json()["accounts"]
    assert [(a["name"], a["role"], a["created_by"]) for a in accounts] == [
        ("carol", "viewer", "admin")]
    assert "argon2" not in server.admin("GET", "/api/v1/accounts").body.decode()
    actions = [(e["action"], e["actor"], e["target"]) for e in audit(server)]
    assert ("account.create", "admin", "carol") in actions
    assert ("account.update", "admin", "carol") in actions


@pytest.mark.parametrize("path,body,status,message", [
    ("/api/v1/accounts/carol", {"role": "technician", "password": "short"}, 400,
     "password: 5 characters; it needs 10 to 1024"),
    ("/api/v1/accounts/carol", {"role": "boss", "password": PASSWORD}, 400,
     "role: 'boss' is not one of viewer, technician, admin"),
    ("/api/v1/accounts/ca%20rol", {"role": "viewer", "password": PASSWORD}, 400,
     "account name 'ca rol': use 1 to 63 letters, digits and . _ - @"),
    ("/api/v1/accounts/carol", {"role": "viewer"}, 400,
     "an account needs role and password, as strings"),
    ("/api/v1/accounts/carol", {"role": "viewer", "password": PASSWORD, "x": 1}, 400,
     "unknown key 'x'"),
])
def test_bad_accounts_are_refused_clearly(server, path, body, status, message):
    r = server.request("PUT", path, body=body, token=ADMIN_TOKEN)
    assert (r.status, r.json()) == (status, {"error": message})
    assert server.admin("GET", "/api/v1/accounts").json()["accounts"] == []


def test_only_admins_manage_accounts(server):
    r = server.request("PUT", "/api/v1/accounts/eve",
                       body={"role": "admin", "password": PASSWORD}, token=TECH_TOKEN)
    assert r.status == 403
    create_account(server, "tech")
    s = Session(server, "tech")
    r = s.request("PUT", "/api/v1/accounts/eve", body={"role": "admin", "password": PASSWORD})
    assert r.status == 403
    assert r.json() == {"error": "the credential 'tech' may not PUT /api/v1/accounts/eve"}


def test_login_sets_a_strict_cookie_and_works_like_a_token(server):
    create_account(server, "carol")
    s = Session(server, "carol")
    attrs = [a.strip() for a in s.set_cookie.split(";")]
    assert attrs[0].startswith("tocsin_session=") and len(attrs[0]) == len("tocsin_session=") + 43
    assert {"Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} <= set(attrs)
    assert "Secure" not in attrs  # plain HTTP here; see test_over_tls_the_cookie_is_secure
    assert s.info["name"] == "carol" and s.info["role"] == "technician"
    assert len(s.info["csrf"]) == 43
    # Reads need no CSRF token; the session answers who is logged in.
    r = s.request("GET", "/api/v1/tickets", csrf=False)
    assert r.status == 200
    assert r.headers["Cache-Control"] == "no-store"
    me = s.request("GET", "/api/v1/session", csrf=False).json()
    assert (me["name"], me["role"], me["csrf"]) == ("carol", "technician", s.csrf)
    # The secret is not stored anywhere: only its hash, in the store.
    con = sqlite3.connect(server.db)
    dump = "\n".join(con.iterdump())
    con.close()
    assert attrs[0].split("=", 1)[1] not in dump
    assert stored_sessions(server) == [("carol", cookie_hash(s))]


def test_actions_with_a_session_need_the_csrf_token_and_name_the_account(server):
    create_account(server, "carol")
    s = Session(server, "carol")
    tid = open_ticket(server, "web01")
    path = f"/api/v1/tickets/{tid}/actions"
    r = s.request("POST", path, body={"action": "acknowledge"}, csrf=False)
    assert r.status == 403
    assert "X-Tocsin-CSRF" in r.json()["error"]
    r = s.request("POST", path, body={"action": "acknowledge"},
                  headers={"X-Tocsin-CSRF": "x" * 43})
    assert r.status == 403
    assert server.ticket(tid)["status"] == "new"
    r = s.request("POST", path, body={"action": "acknowledge"})
    assert r.status == 200, r.body
    metrics = server.get("/metrics").body.decode().splitlines()
    assert "tocsin_console_csrf_refused_total 2" in metrics
    assert "tocsin_console_sessions 1" in metrics
    ack = [j for j in server.ticket(tid)["journal"] if j["new"] == "acknowledged"]
    assert [j["actor"] for j in ack] == ["carol"]
    # Bearer tokens need no CSRF token: they are not sent by browsers.
    r = server.request("POST", path, body={"action": "comment", "text": "cli"},
                       token=TECH_TOKEN)
    assert r.status == 200


def test_wrong_passwords_are_401_and_audited_with_the_address(server):
    create_account(server, "carol")
    r = login_request(server, "carol", "wrong password!")
    assert (r.status, r.json()) == (401, {"error": "wrong name or password"})
    assert "Set-Cookie" not in r.headers
    r = login_request(server, "nobody", "wrong password!")
    assert (r.status, r.json()) == (401, {"error": "wrong name or password"})
    # A name no account can have goes into the trail as "?".
    r = login_request(server, "evil\x1b[31m", "wrong password!")
    assert (r.status, r.json()) == (401, {"error": "wrong name or password"})
    Session(server, "carol")
    entries = [(e["action"], e["actor"], e["target"], e["detail"]) for e in audit(server)]
    assert ("login.fail", "?", "address 127.0.0.1", "no such account") in entries
    assert not any("\x1b" in (e["actor"] or "") for e in audit(server))
    assert ("login.fail", "carol", "address 127.0.0.1", "wrong password") in entries
    assert ("login.fail", "nobody", "address 127.0.0.1", "no such account") in entries
    assert ("login", "carol", "address 127.0.0.1", None) in entries


@pytest.mark.parametrize("body,ctype,status,message", [
    (b'{"name": "carol", "password": "x"', "application/json", 400,
     "invalid JSON at line 1, column 33: '}' expected near end of file"),
    (b'{"name": "carol"}', "application/json", 400,
     "a login needs name and password, as strings"),
    (b'{"name": "carol", "password": "correct horse battery"}', "text/plain", 415,
     "a login is a JSON body: Content-Type: application/json"),
    (b'{"name": "' + b"a" * 64 + b'", "password": "x"}', "application/json", 400,
     "name (at most 63 bytes) or password (at most 1024) is too long"),
])
def test_bad_logins_are_refused_clearly(server, body, ctype, status, message):
    create_account(server, "carol")
    r = server.request("POST", "/api/v1/session", body=body,
                       headers={"Content-Type": ctype})
    assert (r.status, r.json()) == (status, {"error": message})


def test_failed_logins_are_rate_limited_per_account_and_address(tmp_path):
    srv = Server(tmp_path / "s", extra="console:\n  login_failures: 3\n"
                                      "  login_window: 1h\n").start()
    try:
        create_account(srv, "carol")
        create_account(srv, "dave")
        for _ in range(3):
            assert login_request(srv, "carol", "wrong password!").status == 401
        # Blocked now, even with the right password, for the window's rest.
        r = login_request(srv, "carol", PASSWORD)
        assert r.status == 429
        assert 3500 <= int(r.headers["Retry-After"]) <= 3600
        assert "too many failed logins" in r.json()["error"]
        # The address is blocked too: it failed 3 times.
        assert login_request(srv, "dave", PASSWORD).status == 429
        fails = [e for e in audit(srv) if e["action"] == "login.fail"]
        assert len(fails) == 3
        metrics = srv.get("/metrics").body.decode()
        for line in ('tocsin_console_logins_total{result="ok"} 0',
                     'tocsin_console_logins_total{result="failed"} 3',
                     'tocsin_console_logins_total{result="rate_limited"} 2',
                     "tocsin_console_sessions 0"):
            assert line in metrics.splitlines(), metrics
    finally:
        srv.stop()


def test_failures_of_names_that_are_no_account_are_counted_apart(tmp_path):
    # Made-up names have counters of their own (bounded, pushed out first),
    # so that a stream of them never pushes out an account's.
    srv = Server(tmp_path / "s", extra="console:\n  login_failures: 10\n").start()
    try:
        create_account(srv, "carol")
        create_account(srv, "dave")
        for name in ("carol", "dave", "carol", "nobody"):
            assert login_request(srv, name, "wrong password!").status == 401
        metrics = srv.get("/metrics").body.decode().splitlines()
        for line in ('tocsin_console_login_counters{of="account"} 2',
                     'tocsin_console_login_counters{of="unknown_name"} 1',
                     'tocsin_console_login_counters{of="network"} 1'):
            assert line in metrics, metrics
    finally:
        srv.stop()


def test_a_success_forgets_the_account_failures(tmp_path):
    srv = Server(tmp_path / "s", extra="console:\n  login_failures: 3\n").start()
    try:
        create_account(srv, "carol")
        for _ in range(2):
            assert login_request(srv, "carol", "wrong password!").status == 401
        Session(srv, "carol")
        assert login_request(srv, "carol", "wrong password!").status == 401
        # The address has 3 failures now: it is blocked, the account alone not.
        assert login_request(srv, "carol", PASSWORD).status == 429
    finally:
        srv.stop()


def test_sessions_expire_when_idle_and_at_their_absolute_limit(tmp_path):
    srv = Server(tmp_path / "s", extra="console:\n  session_idle: 1s\n"
                                      "  session_max: 3s\n").start()
    try:
        create_account(srv, "carol")
        # Idle: unused for a second, it is gone.
        idle = Session(srv, "carol")
        start = time.monotonic()
        wait_for(lambda: idle.request("GET", "/api/v1/session").status == 401
                 if time.monotonic() - start > 1.1 else False, timeout=5,
                 what="the idle session to expire")
        r = idle.request("GET", "/api/v1/tickets")
        assert r.status == 401
        assert "log in again" in r.json()["error"]
        # Busy: kept alive by its requests, until the absolute limit.
        busy = Session(srv, "carol")
        start = time.monotonic()
        while busy.request("GET", "/api/v1/tickets").status == 200:
            assert time.monotonic() - start < 5, "the session outlived session_max"
            time.sleep(0.2)
        assert time.monotonic() - start >= 2.5
    finally:
        srv.stop()


def test_logout_needs_csrf_and_ends_the_session(server):
    create_account(server, "carol")
    s = Session(server, "carol")
    assert s.request("DELETE", "/api/v1/session", csrf=False).status == 403
    r = s.logout()
    assert r.status == 200
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    r = s.request("GET", "/api/v1/tickets")
    assert r.status == 401 and "log in again" in r.json()["error"]
    assert ("logout", "carol") in [(e["action"], e["actor"]) for e in audit(server)]
    # A bearer token has no session to end.
    r = server.request("DELETE", "/api/v1/session", token=TECH_TOKEN)
    assert r.status == 400


def test_a_new_password_or_deletion_ends_the_sessions(server):
    create_account(server, "carol")
    s = Session(server, "carol")
    create_account(server, "carol", password="another password")
    assert s.request("GET", "/api/v1/tickets").status == 401
    assert login_request(server, "carol", PASSWORD).status == 401
    s = Session(server, "carol", password="another password")
    assert server.admin("DELETE", "/api/v1/accounts/carol").status == 200
    assert s.request("GET", "/api/v1/tickets").status == 401
    assert server.admin("DELETE", "/api/v1/accounts/carol").status == 404
    assert login_request(server, "carol", "another password").status == 401


def test_a_viewer_session_reads_but_may_not_act(server):
    create_account(server, "vera", role="viewer")
    s = Session(server, "vera")
    assert s.info["role"] == "viewer"
    tid = open_ticket(server, "web01")
    assert s.request("GET", f"/api/v1/tickets/{tid}").status == 200
    r = s.request("POST", f"/api/v1/tickets/{tid}/actions", body={"action": "acknowledge"})
    assert r.status == 403
    assert server.ticket(tid)["status"] == "new"


def cookie_hash(session):
    """What the store keeps of a session cookie: BLAKE2b-256 of its value."""
    return hashlib.blake2b(session.cookie.split("=", 1)[1].encode(),
                           digest_size=32).digest()


def stored_sessions(server):
    con = sqlite3.connect(server.db)
    try:
        return con.execute("SELECT name, hash FROM console_sessions"
                           " ORDER BY name, created").fetchall()
    finally:
        con.close()


def restart(server, crash=False):
    server.kill() if crash else server.stop()
    server.start()


@pytest.mark.parametrize("crash", [False, True], ids=["stop", "crash"])
def test_a_session_and_its_csrf_token_survive_a_restart(server, crash):
    create_account(server, "carol")
    s = Session(server, "carol")
    tid = open_ticket(server, "web01")
    restart(server, crash)
    # The same cookie, the same token: the technician goes on working.
    r = s.request("GET", "/api/v1/tickets")
    assert r.status == 200, r.body
    me = s.request("GET", "/api/v1/session", csrf=False).json()
    assert (me["name"], me["role"], me["csrf"]) == ("carol", "technician", s.csrf)
    # The login's absolute deadline; the idle one moved with the request.
    assert me["expires_at"] == s.info["expires_at"]
    assert me["idle_expires_at"] > s.info["idle_expires_at"]
    path = f"/api/v1/tickets/{tid}/actions"
    assert s.request("POST", path, body={"action": "acknowledge"}, csrf=False).status == 403
    r = s.request("POST", path, body={"action": "acknowledge"})
    assert r.status == 200, r.body
    ack = [j for j in server.ticket(tid)["journal"] if j["new"] == "acknowledged"]
    assert [j["actor"] for j in ack] == ["carol"]
    assert "tocsin_console_sessions 1" in server.get("/metrics").body.decode().splitlines()


def test_a_logout_stays_logged_out_after_a_restart(server):
    create_account(server, "carol")
    gone, kept = Session(server, "carol"), Session(server, "carol")
    assert gone.logout().status == 200
    assert stored_sessions(server) == [("carol", cookie_hash(kept))]
    restart(server)
    r = gone.request("GET", "/api/v1/tickets")
    assert r.status == 401 and "log in again" in r.json()["error"]
    assert kept.request("GET", "/api/v1/tickets").status == 200


def test_expired_sessions_are_not_restored_but_purged(server):
    create_account(server, "carol")
    old, idle, fresh = (Session(server, "carol") for _ in range(3))
    server.stop()
    # While the collector was down, old passed its 12 h since the login
    # (though used lately) and idle its hour without a request.
    con = sqlite3.connect(server.db)
    with con:
        con.execute("UPDATE console_sessions SET created = created - 12 * 3600 * 1000"
                    " WHERE hash = ?", (cookie_hash(old),))
        con.execute("UPDATE console_sessions SET seen = seen - 3600 * 1000,"
                    " created = created - 3600 * 1000 WHERE hash = ?",
                    (cookie_hash(idle),))
    con.close()
    server.start()
    for s in (old, idle):
        r = s.request("GET", "/api/v1/tickets")
        assert r.status == 401 and "log in again" in r.json()["error"]
    assert fresh.request("GET", "/api/v1/tickets").status == 200
    assert stored_sessions(server) == [("carol", cookie_hash(fresh))]


def test_a_password_change_ends_the_other_sessions_across_a_restart(server):
    create_account(server, "carol")
    create_account(server, "dave")
    s, other, dave = Session(server, "carol"), Session(server, "carol"), Session(server, "dave")
    r = s.request("PUT", "/api/v1/session/password",
                  body={"current": PASSWORD, "password": "new password!"})
    assert r.status == 200, r.body
    after = Session(server, "carol", password="new password!")
    restart(server)
    assert s.request("GET", "/api/v1/tickets").status == 401
    assert other.request("GET", "/api/v1/tickets").status == 401
    assert after.request("GET", "/api/v1/tickets").status == 200
    assert dave.request("GET", "/api/v1/tickets").status == 200


def test_a_role_change_or_deletion_ends_the_sessions_across_a_restart(server):
    create_account(server, "carol")
    create_account(server, "dave")
    carol, dave = Session(server, "carol"), Session(server, "dave")
    create_account(server, "carol", role="viewer")
    assert server.admin("DELETE", "/api/v1/accounts/dave").status == 200
    assert stored_sessions(server) == []
    restart(server)
    assert carol.request("GET", "/api/v1/tickets").status == 401
    assert dave.request("GET", "/api/v1/tickets").status == 401
    assert Session(server, "carol").info["role"] == "viewer"


def test_accounts_and_their_hashes_survive_a_restart(server):
    create_account(server, "carol")
    h = stored_hash(server, "carol")
    restart(server)
    assert stored_hash(server, "carol") == h
    Session(server, "carol")


def test_the_console_is_compiled_in_and_cached_by_etag(server):
    r = server.request("GET", "/")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="/console/console.js" defer></script>' in r.body
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "no-cache"
    again = server.request("GET", "/", headers={"If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")
    js = server.request("GET", "/console/console.js")
    assert js.status == 200 and js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    for html_sink in (b"innerHTML", b"outerHTML", b"insertAdjacentHTML", b"document.write"):
        assert html_sink not in js.body  # every datum goes in as text
    assert server.request("GET", "/console/console.css").status == 200
    r = server.request("GET", "/console/nope.js")
    assert (r.status, r.json()) == (404, {"error": "no console file 'nope.js'"})
    assert server.request("GET", "/console/index.html").status == 404


def test_a_session_cookie_for_another_server_or_garbage_is_401(server):
    for cookie in ("tocsin_session=" + "A" * 43, "tocsin_session=", "tocsin_session=\x7f"):
        r = server.request("GET", "/api/v1/tickets", headers={"Cookie": cookie})
        assert r.status == 401
    r = server.request("GET", "/api/v1/tickets", headers={"Cookie": "tocsin_session=" + "A" * 43})
    assert "log in again" in r.json()["error"]


def test_console_config_errors_name_file_line_and_column(tmp_path):
    cfg = tmp_path / "server.yaml"
    cfg.write_text(
        "listen: 127.0.0.1:0\n"
        f"database: {tmp_path}/t.db\n"
        "allow_plain_http: true\n"
        "auth:\n  tokens:\n    - {name: a, token: aaaaaaaaaaaaaaaaaaaa, role: admin}\n"
        "console:\n"
        "  session_idle: 0s\n"
        "  session_max: 2h\n"
        "  login_failures: 0\n"
        "  login_window: soon\n"
        "  colour: red\n")
    r = subprocess.run([binary("tocsin-server"), "--check-config", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{cfg}:8:17: console.session_idle: session_idle must be at least 1s" in r.stderr
    assert f"{cfg}:10:19: console.login_failures: 0 is out of range 1..1000000" in r.stderr
    assert f"{cfg}:11:17: console.login_window: expected a duration" in r.stderr
    assert f"{cfg}:12:3: console.colour: unknown key 'colour'" in r.stderr
    # session_max shorter than session_idle makes no sense either.
    cfg.write_text(cfg.read_text().replace("session_idle: 0s", "session_idle: 3h")
                   .replace("  login_failures: 0\n  login_window: soon\n  colour: red\n", ""))
    r = subprocess.run([binary("tocsin-server"), "--check-config", "-c", str(cfg)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{cfg}:9:16: console.session_max: session_max must be at least session_idle" in r.stderr


def test_an_account_changes_its_own_password(server):
    create_account(server, "carol")
    s = Session(server, "carol")
    other = Session(server, "carol")
    path = "/api/v1/session/password"
    r = s.request("PUT", path, body={"current": "not it at all", "password": "new password!"})
    assert (r.status, r.json()) == (403, {"error": "current: wrong password"})
    r = s.request("PUT", path, body={"current": PASSWORD, "password": "short"})
    assert (r.status, r.json()) == (400, {"error": "password: 5 characters; it needs 10 to 1024"})
    r = s.request("PUT", path, body={"current": PASSWORD, "password": "new password!"},
                  csrf=False)
    assert r.status == 403
    r = s.request("PUT", path, body={"current": PASSWORD, "password": "new password!"})
    assert (r.status, r.json()) == (200, {"changed": "carol"})
    # Every session of the account ended; the role stayed.
    assert s.request("GET", "/api/v1/tickets").status == 401
    assert other.request("GET", "/api/v1/tickets").status == 401
    assert login_request(server, "carol", PASSWORD).status == 401
    assert Session(server, "carol", password="new password!").info["role"] == "technician"
    r = server.request("PUT", path, body={"current": "x", "password": "y"}, token=TECH_TOKEN)
    assert r.status == 400


def test_the_cli_manages_accounts(server):
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": ADMIN_TOKEN, "HOME": str(server.dir)}

    def account_set(name, password):
        # Not a terminal: the password is stdin's first line.
        return subprocess.run([binary("tocsin"), "account", "set", name, "--role", "viewer"],
                              input=password, capture_output=True, text=True,
                              env=dict(os.environ, **env))

    r = account_set("carol", "a long passphrase\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "account carol: role viewer\n"
    assert Session(server, "carol", password="a long passphrase").info["role"] == "viewer"
    r = run_cli("account", "list", env=env)
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].split() == ["NAME", "ROLE", "UPDATED", "CREATED", "BY"]
    assert r.stdout.splitlines()[1].split()[:2] == ["carol", "viewer"]
    r = account_set("dave", "short\n")
    assert r.returncode == 1
    assert "password: 5 characters; it needs 10 to 1024" in r.stderr
    r = run_cli("account", "delete", "carol", env=env)
    assert (r.returncode, r.stdout) == (0, "account carol deleted\n")
    r = run_cli("account", "delete", "carol", env=env)
    assert r.returncode == 1 and "no account 'carol'" in r.stderr
    assert run_cli("account", "set", "x", env=env).returncode == 2


def test_over_tls_the_cookie_is_secure(tmp_path, tls_certs):
    from conftest import tls_transport
    srv = Server(tmp_path / "tls", transport=tls_transport(tls_certs),
                 ca_file=tls_certs.ca_crt).start()
    try:
        create_account(srv, "carol")
        s = Session(srv, "carol")
        attrs = [a.strip() for a in s.set_cookie.split(";")]
        assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs)
        assert s.request("GET", "/api/v1/tickets").status == 200
        assert "Secure" in s.logout().headers["Set-Cookie"]
    finally:
        srv.stop()



def test_a_reload_applies_new_console_settings(tmp_path):
    import signal
    srv = Server(tmp_path / "s", extra="console:\n  login_failures: 1\n").start()
    try:
        create_account(srv, "carol")
        assert login_request(srv, "carol", "wrong password!").status == 401
        assert login_request(srv, "carol", PASSWORD).status == 429
        srv.write_config(extra="console:\n  login_failures: 5\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: configuration reloaded" in srv.log_text(),
                 what="the reload")
        assert login_request(srv, "carol", PASSWORD).status == 201
    finally:
        srv.stop()


def held_at_gate(gate, login):
    """The write end of the FIFO once the server's login waits on it, or None
    when the login ended without (a server built without TOCSIN_TEST_HOOKS)."""
    def opened():
        try:
            return os.open(gate, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                raise
        return None if login.is_alive() else "ended"
    fd = wait_for(opened, what="the login to wait at the test gate")
    return None if fd == "ended" else fd


def gated(gate, request, meanwhile=lambda: None):
    """request() held by the server between its password check and what the
    password allows (the test build's gate, password_test_gate()) while
    meanwhile() runs: its answer."""
    result = {}
    held = threading.Thread(target=lambda: result.update(r=request()))
    held.start()
    fd = held_at_gate(gate, held)
    if fd is None:
        held.join()
        pytest.skip("this tocsin-server has no test hooks (build/asan/bin has)")
    try:
        meanwhile()
    finally:
        os.write(fd, b"x")
        os.close(fd)
        held.join()
    return result["r"]


def gated_login(server, gate, name, meanwhile=lambda: None):
    return gated(gate, lambda: login_request(server, name, PASSWORD), meanwhile)


def server_with_gate(tmp_path, variable):
    """A server started with the test gate variable naming a new FIFO, and
    the FIFO's path."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    return Server(tmp_path / "server").start(env={variable: str(gate)}), gate


@pytest.fixture
def gated_server(tmp_path):
    srv, gate = server_with_gate(tmp_path, "TOCSIN_TEST_PASSWORD_GATE")
    yield srv, gate
    srv.stop()


@pytest.mark.parametrize("change", ["password", "role", "delete"])
def test_a_login_whose_account_changes_during_its_password_check_is_409(
        gated_server, change):
    server, gate = gated_server
    create_account(server, "carol")

    def meanwhile():
        if change == "password":
            create_account(server, "carol", password="another long password")
        elif change == "role":
            create_account(server, "carol", role="viewer")
        else:
            r = server.request("DELETE", "/api/v1/accounts/carol", token=ADMIN_TOKEN)
            assert r.status == 200, r.body

    r = gated_login(server, gate, "carol", meanwhile)
    assert (r.status, r.json()) == (
        409, {"error": "the account changed during login; log in again"})
    assert "Set-Cookie" not in r.headers
    assert stored_sessions(server) == []
    assert "tocsin_console_sessions 0" in server.get("/metrics").body.decode().splitlines()
    fails = [(e["actor"], e["detail"]) for e in audit(server) if e["action"] == "login.fail"]
    assert fails == [("carol", "the account changed during login")]
    assert ("login of carol (address 127.0.0.1) refused: the account changed"
            " or was deleted while its password was checked") in server.log.read_text()


def test_a_login_of_an_unchanged_account_passes_the_gate(gated_server):
    server, gate = gated_server
    create_account(server, "carol")
    create_account(server, "dave")
    # Another account's change is no change of carol's.
    r = gated_login(server, gate, "carol",
                    lambda: create_account(server, "dave", role="viewer"))
    assert r.status == 201, r.body
    assert [name for name, _ in stored_sessions(server)] == ["carol"]


def test_a_password_change_over_an_admin_s_reset_is_409(gated_server):
    server, gate = gated_server
    create_account(server, "carol")
    r = gated_login(server, gate, "carol")
    assert r.status == 201, r.body
    cookie = r.headers["Set-Cookie"].split(";")[0]
    csrf = r.json()["csrf"]
    r = gated(gate, lambda: server.request(
        "PUT", "/api/v1/session/password",
        body={"current": PASSWORD, "password": "chosen by carol"},
        headers={"Cookie": cookie, "X-Tocsin-CSRF": csrf}),
        lambda: create_account(server, "carol", password="reset by the admin"))
    assert (r.status, r.json()) == (409, {"error": (
        "account 'carol' changed or was deleted since its password was"
        " checked: nothing was changed")})
    # The admin's reset holds: only its password logs in (a wrong one
    # never reaches the gate).
    assert login_request(server, "carol", "chosen by carol").status == 401
    assert login_request(server, "carol", PASSWORD).status == 401
    r = gated(gate, lambda: login_request(server, "carol", "reset by the admin"))
    assert r.status == 201, r.body


@pytest.fixture
def actor_gated_server(tmp_path):
    """A server whose session requests for an admin's change wait at a FIFO
    after their authentication (console_api_actor()'s test gate)."""
    srv, gate = server_with_gate(tmp_path, "TOCSIN_TEST_ACTOR_GATE")
    yield srv, gate
    srv.stop()


def change_account(server, name, change, role="admin"):
    """What another admin (a configured token: not gated) does to name, of
    role: demote it, give it a new password, or delete it."""
    if change == "role":
        create_account(server, name, role="viewer")
    elif change == "password":
        create_account(server, name, role=role, password="another long password")
    else:
        r = server.request("DELETE", f"/api/v1/accounts/{name}", token=ADMIN_TOKEN)
        assert r.status == 200, r.body


def refusals(server):
    return [(e["actor"], e["action"], e["target"], e["detail"])
            for e in audit(server) if e["action"].endswith(".refused")]


ADMIN_CHANGES = {
    "account": ("PUT", "/api/v1/accounts/mallory",
                {"role": "admin", "password": PASSWORD},
                "account.set", "mallory"),
    "token": ("POST", "/api/v1/enrollment-tokens", {"customer": "acme"},
              "enrollment_token.create", "enrollment token"),
}


@pytest.mark.parametrize("what", sorted(ADMIN_CHANGES))
@pytest.mark.parametrize("change", ["role", "password", "delete"])
def test_an_admin_changed_while_its_request_runs_changes_nothing(
        actor_gated_server, change, what):
    server, gate = actor_gated_server
    method, path, body, action, target = ADMIN_CHANGES[what]
    create_account(server, "carol", role="admin")
    carol = Session(server, "carol")
    r = gated(gate, lambda: carol.request(method, path, body=body),
              lambda: change_account(server, "carol", change))
    assert (r.status, r.json()) == (409, {
        "error": "your account changed while this request ran; log in again"})
    accounts = server.request("GET", "/api/v1/accounts", token=ADMIN_TOKEN).json()
    assert "mallory" not in [a["name"] for a in accounts["accounts"]]
    tokens = server.admin("GET", "/api/v1/enrollment-tokens").json()
    assert tokens["enrollment_tokens"] == []
    assert refusals(server) == [
        ("carol", f"{action}.refused", target,
         "the account changed while the request ran")]
    assert (f"{action} of {target} by carol (session) refused: the account"
            " changed while the request ran") in server.log.read_text()


def test_an_admin_whose_session_ends_while_its_request_runs_is_401(
        actor_gated_server):
    server, gate = actor_gated_server
    create_account(server, "carol", role="admin")
    carol = Session(server, "carol")
    create_account(server, "dave")

    def logout():
        assert carol.logout().status == 200

    r = gated(gate, lambda: carol.request("DELETE", "/api/v1/accounts/dave"),
              logout)
    assert (r.status, r.json()) == (401, {
        "error": "your session ended while this request ran; log in again"})
    accounts = server.request("GET", "/api/v1/accounts", token=ADMIN_TOKEN).json()
    assert "dave" in [a["name"] for a in accounts["accounts"]]
    assert refusals(server) == [
        ("carol", "account.delete.refused", "dave",
         "the session ended while the request ran")]


def test_an_unchanged_admin_s_request_passes_the_gate(actor_gated_server):
    server, gate = actor_gated_server
    create_account(server, "carol", role="admin")
    create_account(server, "dave", role="admin")
    carol = Session(server, "carol")
    # Another admin's change is no change of carol's.
    r = gated(gate, lambda: carol.request("PUT", "/api/v1/accounts/erin",
                                          body={"role": "viewer", "password": PASSWORD}),
              lambda: change_account(server, "dave", "role"))
    assert r.status == 201, r.body
    created = [e for e in audit(server) if e["action"] == "account.create"
               and e["target"] == "erin"]
    assert [e["actor"] for e in created] == ["carol"]
    assert refusals(server) == []


def technician_change(server, what):
    """A technician's change of kind what, ready to send: method, path, body,
    the audit's action and target for it, and a function telling whether
    everything is still as it was before."""
    if what == "ticket":
        tid = open_ticket(server, "web01")

        def unchanged():
            ticket = server.ticket(tid)
            return ticket["status"] == "new" and "carol" not in [
                j["actor"] for j in ticket["journal"]]
        return ("POST", f"/api/v1/tickets/{tid}/actions", {"action": "acknowledge"},
                "ticket.acknowledge", f"ticket {tid}", unchanged)
    silence = {"host": "web*", "duration": "2h", "comment": "kernel update"}
    if what == "silence":
        return ("POST", "/api/v1/silences", silence, "silence.create", "silence",
                lambda: server.get("/api/v1/silences").json()["silences"] == [])
    r = server.request("POST", "/api/v1/silences", body=silence, token=TECH_TOKEN)
    assert r.status == 201, r.body
    sid = r.json()["id"]
    return ("DELETE", f"/api/v1/silences/{sid}", None, "silence.remove",
            f"silence {sid}",
            lambda: server.get(f"/api/v1/silences/{sid}").json()["state"] == "active")


@pytest.mark.parametrize("what", ["ticket", "silence", "silence removal"])
@pytest.mark.parametrize("change", ["role", "password", "delete"])
def test_a_technician_changed_while_its_request_runs_changes_nothing(
        actor_gated_server, change, what):
    server, gate = actor_gated_server
    create_account(server, "carol")
    method, path, body, action, target, unchanged = technician_change(server, what)
    carol = Session(server, "carol")
    r = gated(gate, lambda: carol.request(method, path, body=body),
              lambda: change_account(server, "carol", change, role="technician"))
    assert (r.status, r.json()) == (409, {
        "error": "your account changed while this request ran; log in again"})
    assert unchanged()
    assert refusals(server) == [
        ("carol", f"{action}.refused", target,
         "the account changed while the request ran")]
    assert (f"{action} of {target} by carol (session) refused: the account"
            " changed while the request ran") in server.log.read_text()


@pytest.mark.parametrize("what", ["ticket", "silence", "silence removal"])
def test_a_technician_whose_session_ends_while_its_request_runs_is_401(
        actor_gated_server, what):
    server, gate = actor_gated_server
    create_account(server, "carol")
    method, path, body, action, target, unchanged = technician_change(server, what)
    carol = Session(server, "carol")

    def logout():
        assert carol.logout().status == 200

    r = gated(gate, lambda: carol.request(method, path, body=body), logout)
    assert (r.status, r.json()) == (401, {
        "error": "your session ended while this request ran; log in again"})
    assert unchanged()
    assert refusals(server) == [
        ("carol", f"{action}.refused", target,
         "the session ended while the request ran")]


def test_an_unchanged_technician_s_request_passes_the_gate(actor_gated_server):
    server, gate = actor_gated_server
    create_account(server, "carol")
    create_account(server, "dave")
    method, path, body, _, _, unchanged = technician_change(server, "ticket")
    carol = Session(server, "carol")
    # Another technician's demotion is no change of carol's.
    r = gated(gate, lambda: carol.request(method, path, body=body),
              lambda: change_account(server, "dave", "role"))
    assert r.status == 200, r.body
    assert r.json()["status"] == "acknowledged"
    assert not unchanged()
    assert refusals(server) == []
