"""Enrollment tokens, per-host credentials, rotation, revocation and the
audit trail (PROTOCOL.md), over real HTTP against the real server."""
import json
import sqlite3
import threading
import time
import uuid

import pytest

from conftest import (ADMIN_TOKEN, AGENT_TOKEN, TECH_TOKEN, Server, run_cli,
                      wait_for)


def event(state="ok", item="/"):
    return {"id": str(uuid.uuid4()), "check": "disk", "item": item, "state": state,
            "summary": f"{item} {state}", "observed_at": "2026-11-22T10:00:00Z"}


def new_token(server, customer="acme", **extra):
    r = server.admin("POST", "/api/v1/enrollment-tokens",
                     {"customer": customer, **extra})
    assert r.status == 201, r.body
    return r.json()


def enroll(server, token, host):
    return server.request("POST", "/api/v1/enroll", {"host": host}, token=token)


def enrolled(server, token, host):
    r = enroll(server, token, host)
    assert r.status == 201, r.body
    return r.json()


def post_as(server, credential, host, state="ok"):
    return server.post_events({"host": host, "events": [event(state)]},
                              token=credential)


def test_enrollment_token_is_created_once_and_listed_without_secret(server):
    tok = new_token(server, expires_in="7d", max_uses=10)
    assert tok["customer"] == "acme" and tok["max_uses"] == 10
    assert tok["token"].startswith("tce_") and len(tok["token"]) > 40
    assert tok["expires_at"].endswith("Z")
    listed = server.admin("GET", "/api/v1/enrollment-tokens")
    assert listed.status == 200
    assert tok["token"].encode() not in listed.body
    (row,) = listed.json()["enrollment_tokens"]
    assert row["id"] == tok["id"] and row["state"] == "active"
    assert row["uses"] == 0 and row["created_by"] == "admin"
    # only a hash is stored
    con = sqlite3.connect(server.db)
    (stored,) = con.execute("SELECT hash FROM enrollment_tokens").fetchone()
    con.close()
    assert len(stored) == 32 and tok["token"].encode() not in stored


def test_enroll_issues_a_host_credential_that_reports_for_its_host_only(server):
    tok = new_token(server)
    cred = enrolled(server, tok["token"], "web01")
    assert cred["host"] == "web01" and cred["customer"] == "acme"
    assert cred["credential"].startswith("tch_")
    ok = post_as(server, cred["credential"], "web01", "critical")
    assert ok.status == 200 and ok.json()["tickets_opened"] == 1
    other = post_as(server, cred["credential"], "db01", "critical")
    assert other.status == 403
    assert other.json() == {
        "error": "the credential of host web01 may not report for host db01"}
    assert server.db_count("events") == 1
    # the shared agent token still reports for any host
    assert post_as(server, AGENT_TOKEN, "db01").status == 200


def test_a_host_credential_cannot_do_more_than_report(server):
    cred = enrolled(server, new_token(server)["token"], "web01")["credential"]
    assert server.get("/api/v1/tickets", token=cred).status == 403
    assert server.request("GET", "/api/v1/credentials", token=cred).status == 403
    # neither can an enrollment token
    tok = new_token(server)["token"]
    assert post_as(server, tok, "web01").status == 403
    # and enrolling needs an enrollment token, not an admin's
    r = enroll(server, ADMIN_TOKEN, "web01")
    assert r.status == 403


def test_used_up_expired_and_revoked_tokens_are_401_saying_which(server):
    once = new_token(server, max_uses=1)
    enrolled(server, once["token"], "web01")
    r = enroll(server, once["token"], "web02")
    assert r.status == 401
    assert r.json()["error"] == \
        f"enrollment token {once['id']} is used up (1 of 1 enrollments)"

    revoked = new_token(server)
    assert server.admin("DELETE", f"/api/v1/enrollment-tokens/{revoked['id']}").status == 200
    r = enroll(server, revoked["token"], "web03")
    assert r.status == 401
    assert r.json()["error"] == f"enrollment token {revoked['id']} was revoked"

    short = new_token(server, expires_in="1s")
    # poll with a bad body: 400 while the token is valid, 401 once expired
    wait_for(lambda: server.request("POST", "/api/v1/enroll", {"host": ""},
                                    token=short["token"]).status == 401,
             timeout=5, what="the token to expire")
    r = enroll(server, short["token"], "web04")
    assert r.status == 401
    assert r.json()["error"].startswith(f"enrollment token {short['id']} expired at ")
    states = {t["id"]: t["state"] for t in
              server.admin("GET", "/api/v1/enrollment-tokens").json()["enrollment_tokens"]}
    assert states == {once["id"]: "used_up", revoked["id"]: "revoked",
                      short["id"]: "expired"}
    assert server.db_count("credentials") == 1


def test_a_host_bound_to_another_customer_is_409(tmp_path):
    srv = Server(tmp_path / "server", extra="""\
customers:
  acme: {name: ACME}
  globex: {name: Globex}
hosts:
  router01: {customer: globex}
""").start()
    try:
        acme = new_token(srv, "acme")["token"]
        globex = new_token(srv, "globex")["token"]
        first = enrolled(srv, acme, "web01")
        r = enroll(srv, globex, "web01")
        assert r.status == 409
        assert r.json()["error"].startswith(
            f"host web01 belongs to customer acme (credential {first['credential_id']})")
        # the inventory binds hosts as well
        r = enroll(srv, acme, "router01")
        assert r.status == 409
        assert r.json()["error"] == \
            "host router01 belongs to customer globex in the inventory, not to acme"
        # a customer the inventory does not know gets no token
        r = srv.admin("POST", "/api/v1/enrollment-tokens", {"customer": "initech"})
        assert r.status == 400 and "'initech' is not a customer" in r.json()["error"]
        # revoking acme's credential does not free the name for anyone
        assert srv.admin("DELETE", f"/api/v1/credentials/{first['credential_id']}").status == 200
        r = enroll(srv, globex, "web01")
        assert r.status == 409
        assert r.json()["error"].startswith("host web01 belongs to customer acme (since ")
        assert "tocsin enrollment approve web01 --customer globex" in r.json()["error"]
        # an administrator moves it
        r = srv.admin("POST", "/api/v1/enrollment-approvals",
                      {"host": "web01", "customer": "globex"})
        assert r.status == 201, r.body
        assert enroll(srv, globex, "web01").status == 201
        assert enroll(srv, acme, "web01").status == 409
    finally:
        srv.stop()


def test_reenrolling_replaces_the_old_credential(server):
    tok = new_token(server)["token"]
    old = enrolled(server, tok, "web01")
    new = enrolled(server, tok, "web01")
    assert new["credential_id"] != old["credential_id"]
    assert post_as(server, new["credential"], "web01").status == 200
    r = post_as(server, old["credential"], "web01")
    assert r.status == 401
    assert r.json()["error"] == (f"credential {old['credential_id']} of host web01 "
                                 "was replaced when the host enrolled again")


def test_revoked_credential_is_401_and_keeps_nothing_of_its_batch(server):
    cred = enrolled(server, new_token(server)["token"], "web01")
    r = server.admin("DELETE", f"/api/v1/credentials/{cred['credential_id']}")
    assert r.status == 200 and r.json()["state"] == "revoked"
    r = post_as(server, cred["credential"], "web01", "critical")
    assert r.status == 401
    assert r.json() == {
        "error": f"credential {cred['credential_id']} of host web01 was revoked"}
    assert server.db_count("events") == 0
    again = server.admin("DELETE", f"/api/v1/credentials/{cred['credential_id']}")
    assert again.status == 409
    assert "already revoked" in again.json()["error"]
    assert server.admin("DELETE", "/api/v1/credentials/999").status == 404


def test_rotation_keeps_the_old_credential_until_the_new_one_is_used(server):
    cred = enrolled(server, new_token(server)["token"], "web01")
    old = cred["credential"]
    r = server.request("POST", "/api/v1/credentials/rotate", token=old)
    assert r.status == 200, r.body
    new = r.json()
    assert new["credential_id"] != cred["credential_id"]
    # an agent that lost the answer still gets in with the old secret
    assert post_as(server, old, "web01").status == 200
    # the first use of the new one retires the old one
    assert post_as(server, new["credential"], "web01").status == 200
    r = post_as(server, old, "web01")
    assert r.status == 401
    assert r.json()["error"] == (
        f"credential {cred['credential_id']} of host web01 was replaced by "
        f"credential {new['credential_id']} at a rotation")
    assert post_as(server, new["credential"], "web01").status == 200
    creds = {c["id"]: c for c in
             server.admin("GET", "/api/v1/credentials?host=web01").json()["credentials"]}
    assert creds[cred["credential_id"]]["state"] == "revoked"
    assert creds[cred["credential_id"]]["revoked_reason"] == "rotated"
    assert creds[new["credential_id"]]["state"] == "active"


def test_rotating_again_with_the_old_secret_supersedes_the_lost_one(tmp_path):
    srv = Server(tmp_path / "server",
                 extra="enrollment:\n  rotate_interval: 1s\n").start()
    try:
        cred = enrolled(srv, new_token(srv)["token"], "web01")
        lost = srv.request("POST", "/api/v1/credentials/rotate",
                           token=cred["credential"]).json()
        # one rotation per host per rotate_interval: at once it is 429
        again = srv.request("POST", "/api/v1/credentials/rotate",
                            token=cred["credential"])
        assert again.status == 429, again.body
        assert again.headers["Retry-After"] == "1"
        assert "rotated its credential less than 1 s ago" in again.json()["error"]
        again = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
            srv.request("POST", "/api/v1/credentials/rotate", token=cred["credential"])),
            timeout=5, what="the next rotation to be allowed")
        assert post_as(srv, again.json()["credential"], "web01").status == 200
        r = post_as(srv, lost["credential"], "web01")
        assert r.status == 401
        assert "superseded by a later rotation" in r.json()["error"]
    finally:
        srv.stop()


def test_rotations_are_limited_to_one_a_minute_by_default(server):
    cred = enrolled(server, new_token(server)["token"], "web01")
    new = server.request("POST", "/api/v1/credentials/rotate", token=cred["credential"])
    assert new.status == 200
    for secret in (cred["credential"], new.json()["credential"]):
        r = server.request("POST", "/api/v1/credentials/rotate", token=secret)
        assert r.status == 429
        assert int(r.headers["Retry-After"]) in range(58, 61)
        assert r.json()["error"].startswith(
            "host web01 rotated its credential less than 60 s ago; rotate again in ")
    assert server.db_count("credentials") == 2
    metrics = server.get("/metrics").body.decode()
    assert 'tocsin_writer_jobs_total{result="declined"} 2' in metrics
    assert 'tocsin_writer_jobs_total{result="failed"} 0' in metrics


def test_shared_tokens_cannot_rotate(server):
    r = server.request("POST", "/api/v1/credentials/rotate", token=AGENT_TOKEN)
    assert r.status == 403
    assert r.json()["error"] == \
        "only a per-host credential can be rotated; 'agents' is a token from auth.tokens"


def test_credentials_survive_a_restart(tmp_path):
    srv = Server(tmp_path / "server").start()
    try:
        tok = new_token(srv)["token"]
        keep = enrolled(srv, tok, "web01")
        gone = enrolled(srv, tok, "web02")
        rotating = enrolled(srv, tok, "web03")
        rot = srv.request("POST", "/api/v1/credentials/rotate",
                          token=rotating["credential"]).json()
        srv.admin("DELETE", f"/api/v1/credentials/{gone['credential_id']}")
        srv.stop()
        srv.start()
        assert post_as(srv, keep["credential"], "web01").status == 200
        assert post_as(srv, gone["credential"], "web02").status == 401
        # the rotation's grace survives too, and ends at the first use
        assert post_as(srv, rotating["credential"], "web03").status == 200
        assert post_as(srv, rot["credential"], "web03").status == 200
        assert post_as(srv, rotating["credential"], "web03").status == 401
        assert enroll(srv, tok, "web04").status == 201
    finally:
        srv.stop()


def test_audit_trail_names_actor_and_action(server):
    tok = new_token(server)
    cred = enrolled(server, tok["token"], "web01")
    rot = server.request("POST", "/api/v1/credentials/rotate",
                         token=cred["credential"]).json()
    post_as(server, rot["credential"], "web01")
    server.admin("DELETE", f"/api/v1/credentials/{rot['credential_id']}")
    server.admin("DELETE", f"/api/v1/enrollment-tokens/{tok['id']}")
    r = server.admin("GET", "/api/v1/audit")
    assert r.status == 200
    rows = [(a["actor"], a["action"], a["target"]) for a in reversed(r.json()["audit"])]
    c, n = cred["credential_id"], rot["credential_id"]
    assert rows == [
        ("admin", "enrollment_token.create", f"enrollment token {tok['id']}"),
        (f"enrollment token {tok['id']}", "enroll", f"credential {c}"),
        (f"credential {c}", "credential.rotate", f"credential {c}"),
        (f"credential {n}", "credential.retire", f"credential {c}"),
        ("admin", "credential.revoke", f"credential {n}"),
        ("admin", "enrollment_token.revoke", f"enrollment token {tok['id']}"),
    ]
    for a in r.json()["audit"]:
        assert a["at"].endswith("Z")
    assert tok["token"].encode() not in r.body
    assert cred["credential"].encode() not in r.body
    assert server.get("/api/v1/audit", token=TECH_TOKEN).status == 403
    assert server.admin("GET", "/api/v1/audit?limit=2").json()["audit"][0]["action"] \
        == "enrollment_token.revoke"


@pytest.mark.parametrize("body, message", [
    ({}, "customer: expected a customer id"),
    ({"customer": ""}, "customer: expected a customer id"),
    ({"customer": "acme", "expires_in": "soon"}, "expires_in: expected a duration"),
    ({"customer": "acme", "expires_in": "400d"}, "expires_in: expected a duration"),
    ({"customer": "acme", "max_uses": 0}, "max_uses: expected an integer from 1"),
    ({"customer": "acme", "max_uses": "ten"}, "max_uses: expected an integer from 1"),
    ({"customer": "acme", "colour": "red"}, "unknown key 'colour'"),
])
def test_bad_token_requests_are_400(server, body, message):
    r = server.admin("POST", "/api/v1/enrollment-tokens", body)
    assert r.status == 400
    assert message in r.json()["error"]
    assert server.admin("GET", "/api/v1/enrollment-tokens").json()["enrollment_tokens"] == []


def test_bad_enroll_and_admin_requests(server):
    tok = new_token(server)["token"]
    r = server.request("POST", "/api/v1/enroll", b'{"host": "web01",\n "x": }', token=tok)
    assert r.status == 400 and "invalid JSON at line 2, column" in r.json()["error"]
    for host in ("", "web 01", "a/b", "x" * 254):
        r = enroll(server, tok, host)
        assert r.status == 400, host
        assert r.json()["error"].startswith("host: expected a host name")
    assert server.admin("DELETE", "/api/v1/enrollment-tokens/abc").status == 400
    assert server.admin("DELETE", "/api/v1/enrollment-tokens/77").status == 404
    assert server.request("POST", "/api/v1/enrollment-tokens", {"customer": "acme"},
                          token=AGENT_TOKEN).status == 403
    assert server.db_count("credentials") == 0


def test_cli_enrollment_and_credentials(server):
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": ADMIN_TOKEN}
    out = run_cli("enrollment", "create", "--customer", "acme", "--expires", "2d",
                  "--max-uses", "3", "--json", env=env)
    assert out.returncode == 0, out.stderr
    tok = json.loads(out.stdout)
    assert tok["max_uses"] == 3
    human = run_cli("enrollment", "create", "--customer", "acme", env=env)
    assert human.returncode == 0 and "tce_" in human.stdout
    assert "tocsin-agent enroll --server URL --token TOKEN" in human.stdout
    listed = run_cli("enrollment", "list", env=env)
    assert listed.returncode == 0
    assert "acme" in listed.stdout and "0/3" in listed.stdout
    assert tok["token"] not in listed.stdout

    cred = enrolled(server, tok["token"], "web01")
    creds = run_cli("credential", "list", "--customer", "acme", env=env)
    assert creds.returncode == 0
    assert "web01" in creds.stdout and "active" in creds.stdout
    assert cred["credential"] not in creds.stdout
    none = run_cli("credential", "list", "--host", "nope", "--json", env=env)
    assert json.loads(none.stdout) == {"credentials": []}

    rev = run_cli("credential", "revoke", str(cred["credential_id"]), env=env)
    assert rev.returncode == 0
    assert f"credential {cred['credential_id']} revoked at" in rev.stdout
    again = run_cli("credential", "revoke", str(cred["credential_id"]), env=env)
    assert again.returncode == 1 and "already revoked" in again.stderr
    rev = run_cli("enrollment", "revoke", str(tok["id"]), env=env)
    assert rev.returncode == 0
    bad = run_cli("enrollment", "create", env=env)
    assert bad.returncode == 2 and "create needs --customer" in bad.stderr
    audit = run_cli("audit", "--limit", "3", env=env)
    assert audit.returncode == 0
    assert "enrollment_token.revoke" in audit.stdout
    assert "credential.revoke" in audit.stdout


def test_a_revocation_racing_a_rotation_never_leaves_a_successor_valid(server):
    """The reviewer's race: a rotation and a revocation of one credential at
    once.  Whichever commits first, nothing issued to the revoked credential
    may work afterwards (the index follows the commits in their order)."""
    tok = new_token(server)["token"]
    bypass = []
    for trial in range(200):
        host = f"h{trial}"
        cred = enrolled(server, tok, host)
        go, issued = threading.Barrier(2), []

        def rotate():
            go.wait()
            r = server.request("POST", "/api/v1/credentials/rotate",
                               token=cred["credential"])
            if r.status == 200:
                issued.append(r.json()["credential"])

        def revoke():
            go.wait()
            r = server.admin("DELETE", f"/api/v1/credentials/{cred['credential_id']}")
            assert r.status == 200, r.body

        threads = [threading.Thread(target=rotate), threading.Thread(target=revoke)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for secret in issued + [cred["credential"]]:
            if post_as(server, secret, host).status != 401:
                bypass.append(trial)
    assert bypass == [], f"{len(bypass)} of 200 trials left a credential valid"
    con = sqlite3.connect(server.db)
    active = con.execute("SELECT count(*) FROM credentials WHERE revoked_at IS NULL"
                         " AND (expires_at IS NULL OR expires_at > ?)",
                         (int(time.time() * 1000),)).fetchone()[0]
    con.close()
    assert active == 0


def test_another_customer_cannot_take_a_host_that_reports_with_a_shared_token(tmp_path):
    srv = Server(tmp_path / "server", extra="""\
customers:
  acme: {name: ACME}
  globex: {name: Globex}
hosts:
  web02: {customer: acme}
""").start()
    try:
        # web01 reports with the shared token; neither the inventory nor a claim names it
        assert post_as(srv, AGENT_TOKEN, "web01", "critical").status == 200
        globex = new_token(srv, "globex")["token"]
        r = enroll(srv, globex, "web01")
        assert r.status == 409, r.body
        assert r.json()["error"].startswith(
            "host web01 is in use: it reported 0 s ago and belongs to no customer yet")
        # its ticket is untouched and nobody holds a credential for it
        assert srv.db_count("credentials") == 0
        # a host the inventory gives to acme moves to per-host credentials freely
        assert post_as(srv, AGENT_TOKEN, "web02").status == 200
        acme = new_token(srv, "acme")["token"]
        assert enroll(srv, acme, "web02").status == 201
        assert enroll(srv, globex, "web02").status == 409
    finally:
        srv.stop()


def test_reenrolling_a_host_in_use_needs_an_admin(server):
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": ADMIN_TOKEN}
    tok = new_token(server, max_uses=None)["token"]
    live = enrolled(server, tok, "web01")
    assert post_as(server, live["credential"], "web01").status == 200
    # another holder of the multi-use token tries to take web01 over
    r = enroll(server, tok, "web01")
    assert r.status == 409
    assert r.json()["error"].startswith(
        f"host web01 is in use: its credential {live['credential_id']} was used ")
    assert "tocsin enrollment approve web01" in r.json()["error"]
    assert post_as(server, live["credential"], "web01").status == 200
    # the administrator approves one re-enrollment (a reinstalled host)
    out = run_cli("enrollment", "approve", "web01", "--expires", "10m", env=env)
    assert out.returncode == 0, out.stderr
    assert "the next enrollment of host web01 may go ahead until" in out.stdout
    again = enrolled(server, tok, "web01")
    assert post_as(server, again["credential"], "web01").status == 200
    assert post_as(server, live["credential"], "web01").status == 401
    # used up: the next attempt needs another approval
    assert enroll(server, tok, "web01").status == 409
    listed = run_cli("enrollment", "approvals", env=env)
    assert listed.returncode == 0
    assert "web01" in listed.stdout and "used" in listed.stdout
    audit = server.admin("GET", "/api/v1/audit").json()["audit"]
    assert any(a["action"] == "enrollment.approve" for a in audit)
    assert any("approved by enrollment approval" in (a["detail"] or "") for a in audit)


def test_tokens_for_some_host_names(server):
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": ADMIN_TOKEN}
    out = run_cli("enrollment", "create", "--customer", "acme", "--hosts", "web*",
                  "--json", env=env)
    assert out.returncode == 0, out.stderr
    tok = json.loads(out.stdout)
    assert tok["hosts"] == "web*"
    assert enroll(server, tok["token"], "web07").status == 201
    r = enroll(server, tok["token"], "db01")
    assert r.status == 403
    assert r.json()["error"] == (f"enrollment token {tok['id']} may only enroll hosts "
                                 "matching 'web*', not db01")
    r = server.admin("POST", "/api/v1/enrollment-tokens",
                     {"customer": "acme", "hosts": "web 01"})
    assert r.status == 400 and r.json()["error"].startswith("hosts: expected a shell pattern")


@pytest.mark.parametrize("body, message", [
    ({}, "host: expected a host name"),
    ({"host": "web01", "expires_in": "8d"}, "expires_in: expected a duration from 1s to 7d"),
    ({"host": "web01", "customer": ""}, "customer: expected the id of a customer"),
    ({"host": "web01", "why": "x"}, "unknown key 'why'"),
])
def test_bad_approval_requests_are_400(server, body, message):
    r = server.admin("POST", "/api/v1/enrollment-approvals", body)
    assert r.status == 400
    assert message in r.json()["error"]
    assert server.request("POST", "/api/v1/enrollment-approvals", {"host": "web01"},
                          token=TECH_TOKEN).status == 403
