"""Enrollment, per-host credentials, rotation and revocation, end to end:
the real `tocsin-agent enroll` / `rotate-credential` and the real agent
against the real collector (PROTOCOL.md).

A collector without enrollment (one that answers 404 to /api/v1/enroll)
makes these tests skip with that reason.
"""
import json
import os
import re
import stat
import subprocess

import pytest

from agentlib import (Agent, CertFactory, Proxy, server_event_ids, system_trust_with,
                      tls_server_context)
from conftest import (ADMIN_TOKEN, Server, binary, http, run_agent, wait_for,
                      write_agent_config)

INVENTORY = """
customers:
  acme:
    name: ACME GmbH
  globex:
    name: Globex
"""


# The agent rotates every 2 s below: let the collector allow that
# (enrollment.rotate_interval is one minute by default).
ENROLLMENT = """
enrollment:
  rotate_interval: 1s
"""


@pytest.fixture
def enroll_server(tmp_path):
    srv = Server(tmp_path / "server", extra=INVENTORY + ENROLLMENT).start()
    probe = http("POST", srv.url + "/api/v1/enroll", body=b'{"host": "probe"}',
                 token="not-an-enrollment-token-0000")
    if probe.status == 404:
        srv.stop()
        pytest.skip("the collector answers 404 to /api/v1/enroll: its enrollment "
                    "(delivery-server branch) is not merged yet")
    yield srv
    srv.stop()


def enrollment_token(srv, customer="acme", **extra):
    body = json.dumps({"customer": customer, **extra}).encode()
    r = http("POST", srv.url + "/api/v1/enrollment-tokens", body=body, token=ADMIN_TOKEN)
    assert r.status == 201, r.body
    return r.json()["token"]


def host_config(tmp_path, srv, host, server_extra=""):
    state = tmp_path / host
    state.mkdir(exist_ok=True)
    return write_agent_config(state / "agent.yaml", srv.url, host=host, token=None,
                              server_extra=server_extra,
                              checks="  disk:\n    interval: 1s\n    discover: false\n"
                                     "    warning: 0%\n    critical: 100%\n    mounts: [/]\n")


def enroll(config, srv, token, *more):
    return run_agent(config, "enroll", "--server", srv.url, "--token", token, *more)


def credential_id(run):
    m = re.search(r"credential (\d+) stored in", run.stdout)
    assert m, run.stdout + run.stderr
    return int(m.group(1))


def test_enroll_stores_a_private_credential_the_agent_uses(enroll_server, tmp_path):
    config = host_config(tmp_path, enroll_server, "web01")
    run = enroll(config, enroll_server, enrollment_token(enroll_server))
    assert run.returncode == 0, run.stderr
    assert "enrolled host web01 for customer acme" in run.stdout
    cred = config.parent / "credential"
    assert stat.S_IMODE(os.stat(cred).st_mode) == 0o600
    secret = cred.read_text().splitlines()[0]
    assert len(secret) >= 16 and secret not in run.stdout

    once = run_agent(config, "--once")
    assert once.returncode == 0, once.stderr
    assert [t["host"] for t in enroll_server.tickets("all")] == ["web01"]


def test_refused_enrollments_say_why(enroll_server, tmp_path):
    token = enrollment_token(enroll_server, max_uses=1)
    web = host_config(tmp_path, enroll_server, "web01")
    assert enroll(web, enroll_server, token).returncode == 0
    # used up
    db = host_config(tmp_path, enroll_server, "db01")
    run = enroll(db, enroll_server, token)
    assert run.returncode == 1
    assert "enrollment failed: the collector at" in run.stderr
    assert "HTTP 401" in run.stderr
    assert not (db.parent / "credential").exists()
    # a host of another customer
    run = enroll(web, enroll_server, enrollment_token(enroll_server, customer="globex"))
    assert run.returncode == 1 and "HTTP 409" in run.stderr, run.stderr


def test_rotation_by_hand_and_on_schedule(enroll_server, tmp_path):
    config = host_config(tmp_path, enroll_server, "web01")
    first = credential_id(enroll(config, enroll_server, enrollment_token(enroll_server)))
    run = run_agent(config, "rotate-credential")
    assert run.returncode == 0, run.stderr
    second = credential_id(run)
    assert second != first
    assert run_agent(config, "--once").returncode == 0

    config.write_text(config.read_text().replace("  timeout: 5s\n",
                                                 "  timeout: 5s\n  rotate_every: 2s\n"))
    agent = Agent(config).start()
    try:
        agent.wait_log("credential rotated: now credential")
        events = enroll_server.db_count("events")
        wait_for(lambda: enroll_server.db_count("events") > events + 1, timeout=15,
                 what="events after the scheduled rotation")
    finally:
        assert agent.stop() == 0, agent.text()


def revoke(srv, cred_id):
    r = http("DELETE", f"{srv.url}/api/v1/credentials/{cred_id}", token=ADMIN_TOKEN)
    assert r.status in (200, 204), r.body


def test_revoked_credential_keeps_events_and_says_reenroll(enroll_server, tmp_path):
    config = host_config(tmp_path, enroll_server, "web01", server_extra="  backoff_max: 1s\n")
    cred = credential_id(enroll(config, enroll_server, enrollment_token(enroll_server)))
    revoke(enroll_server, cred)

    run = run_agent(config, "--once")
    assert run.returncode == 1
    assert f"credential {cred} of host web01 was revoked" in run.stderr
    assert "HTTP 401" in run.stderr and "re-enroll" in run.stderr
    assert "events stay in the outbox" in run.stderr
    agent = Agent(config)
    kept = agent.outbox_ids()
    assert kept

    # the daemon backs off with the same clear error, keeping everything,
    # and takes the new credential as soon as the host is enrolled again
    agent.start()
    try:
        agent.wait_log("re-enroll this host")
        assert enroll(config, enroll_server, enrollment_token(enroll_server)).returncode == 0
        agent.wait_log("using the new credential from")
        wait_for(lambda: kept <= set(server_event_ids(enroll_server)), timeout=15,
                 what="the events kept during the revocation")
    finally:
        assert agent.stop() == 0, agent.text()


def test_credential_may_not_report_for_another_host(enroll_server, tmp_path):
    config = host_config(tmp_path, enroll_server, "web01")
    assert enroll(config, enroll_server, enrollment_token(enroll_server)).returncode == 0
    config.write_text(config.read_text().replace("host: web01", "host: db01"))
    run = run_agent(config, "--once")
    assert run.returncode == 1
    assert "refused the events of host db01 (HTTP 403: " in run.stderr
    assert "may not report for host db01" in run.stderr, run.stderr


def test_enroll_against_a_url_without_enrollment(server, tmp_path):
    """A URL whose collector (or path) has no enrollment endpoint: the real
    server's 404 is explained, and nothing is stored."""
    config = write_agent_config(tmp_path / "agent.yaml", server.url, token=None)
    run = run_agent(config, "enroll", "--server", server.url + "/not-tocsin", "--token",
                    "some-enrollment-token-000")
    assert run.returncode == 1
    assert "does not offer the enrollment (HTTP 404)" in run.stderr, run.stderr
    assert "configure server.token instead" in run.stderr
    assert not (tmp_path / "credential").exists()


def test_agent_without_any_credential_says_enroll_first(tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", "http://127.0.0.1:9", token=None)
    run = run_agent(config, "--once")
    assert run.returncode == 1
    assert "no credential" in run.stderr
    assert "tocsin-agent enroll --server URL --token TOKEN" in run.stderr


def test_enroll_trusts_only_the_ca_file(enroll_server, tmp_path):
    """The enrollment token goes only to a collector signed by server.ca_file,
    even when the collector's CA (publicca) is in the system trust directory
    (in a private mount namespace)."""
    certs = CertFactory(tmp_path / "certs")
    certs.ca("privateca")
    certs.ca("publicca")
    collector = certs.leaf("collector", "publicca")
    in_ns = system_trust_with(tmp_path, certs.dir / "publicca.pem")
    token = enrollment_token(enroll_server)

    def enroll_via(front, host, ca):
        config = host_config(tmp_path, enroll_server, host,
                             server_extra=f"  ca_file: {certs.dir / ca}\n")
        return run_agent(config, "enroll", "--server", f"https://127.0.0.1:{front.port}",
                         "--token", token, prefix=in_ns)

    with Proxy(enroll_server.url, tls_server_context(*collector)) as front:
        refused = enroll_via(front, "web01", "privateca.pem")
        assert front.bodies == []  # the token did not go out
        accepted = enroll_via(front, "web02", "publicca.pem")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert ("unknown CA: the collector's certificate is not signed by server.ca_file "
            f"{certs.dir / 'privateca.pem'}") in refused.stderr, refused.stderr
    assert not (tmp_path / "web01" / "credential").exists()
    assert accepted.returncode == 0, accepted.stderr
    assert "enrolled host web02 for customer acme" in accepted.stdout


def test_enroll_usage_errors(tmp_path):
    def agent(*args):
        return subprocess.run([binary("tocsin-agent"), *args], capture_output=True,
                              text=True, timeout=30)

    missing_token = agent("enroll", "--server", "https://x")
    assert missing_token.returncode == 2
    assert "usage: tocsin-agent enroll" in missing_token.stderr
    typo = agent("enrol")
    assert typo.returncode == 2 and "unknown command 'enrol'" in typo.stderr
    # a configuration named explicitly must exist
    absent = agent("enroll", "--server", "https://x:1", "--token", "t" * 20,
                   "--config", str(tmp_path / "none.yaml"))
    assert absent.returncode == 2 and "none.yaml: cannot read" in absent.stderr
    # an http:// enrollment needs allow_plain_http in the configuration
    config = write_agent_config(tmp_path / "agent.yaml", "http://127.0.0.1:9", token=None)
    config.write_text(config.read_text().replace("  allow_plain_http: true\n", "")
                      .replace("http://127.0.0.1:9", "https://127.0.0.1:9"))
    plain = run_agent(config, "enroll", "--server", "http://127.0.0.1:9", "--token", "t" * 20)
    assert plain.returncode == 1 and "use an https:// URL" in plain.stderr


@pytest.mark.parametrize("host,customer", [("web01", "c" * 256), ("web 01", "acme"),
                                           ("web01", "ac\nme")])
def test_a_grant_with_names_the_agent_cannot_keep_is_refused_before_it_is_stored(
        tmp_path, host, customer):
    """A collector (here a plain HTTP peer: ours never sends these) that
    grants a credential with a customer longer than the agent keeps, or a
    host with a space or a line break in it, is refused with a clear
    error, and nothing is stored."""
    from test_deliver_review import Peer
    body = json.dumps({"host": host, "customer": customer, "credential_id": 7,
                       "credential": "s" * 40}).encode()
    with Peer(201, body=body) as peer:
        config = host_config(tmp_path, peer, "web01")
        run = enroll(config, peer, "t" * 40)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "the collector sent a host or customer name that is empty" in run.stderr, run.stderr
    assert not (config.parent / "credential").exists()
