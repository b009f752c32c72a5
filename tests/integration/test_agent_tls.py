"""The agent's TLS client against a real TLS peer: Python's ssl module in
front of the real tocsin-server (agentlib.Proxy with a TLS context), with
certificates made by openssl in the test.  The agent must refuse a
collector it cannot verify and say why; with the right CA (and pin, and
client certificate where asked) the events reach the real server.
"""
import pytest

from agentlib import CertFactory, Proxy, system_trust_with, tls_server_context
from conftest import Server, run_agent, tls_transport, write_agent_config


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    f = CertFactory(tmp_path_factory.mktemp("certs"))
    f.ca("goodca")
    f.ca("otherca")
    f.good = f.leaf("server", "goodca")
    f.expired = f.leaf("expired", "goodca", days=-1)
    f.wrongname = f.leaf("wrongname", "goodca", san="DNS:other.example")
    f.rogue = f.leaf("rogue", "otherca")
    f.client = f.leaf("agent01", "goodca", san="DNS:agent01", client=True)
    return f


def deliver(tmp_path, port, server_extra, prefix=()):
    config = write_agent_config(tmp_path / "agent.yaml", f"https://127.0.0.1:{port}",
                                host="tls01", server_extra=server_extra,
                                checks="  disk:\n    discover: false\n    mounts: [/]\n")
    text = config.read_text().replace("  allow_plain_http: true\n", "")
    config.write_text(text)
    return run_agent(config, "--once", prefix=prefix)


def ca_line(certs):
    return f"  ca_file: {certs.dir / 'goodca.pem'}\n"


def test_verified_collector_gets_the_events(server, tmp_path, certs):
    with Proxy(server.url, tls_server_context(*certs.good)) as front:
        run = deliver(tmp_path, front.port,
                      ca_line(certs) + f"  pin_sha256: {certs.pin(certs.good[0])}\n")
    assert run.returncode == 0, run.stderr
    assert "delivered 1 events" in run.stdout
    assert "plain HTTP" not in run.stderr
    assert server.db_count("events") == 1


@pytest.mark.parametrize("cert,extra,reason", [
    ("rogue", "", "unknown CA: the collector's certificate is not signed by server.ca_file"),
    ("expired", "", "TLS: the collector's certificate has expired"),
    ("wrongname", "", "TLS: host name mismatch"),
    ("good", "pin", "TLS: pin mismatch"),
    ("good", "system", "unknown CA"),
])
def test_unverifiable_collector_is_refused_with_the_reason(server, tmp_path, certs,
                                                           cert, extra, reason):
    pair = {"rogue": certs.rogue, "expired": certs.expired,
            "wrongname": certs.wrongname, "good": certs.good}[cert]
    lines = ca_line(certs)
    if extra == "pin":  # the right CA, but another key pinned
        lines += f"  pin_sha256: {certs.pin(certs.rogue[0])}\n"
    if extra == "system":  # no ca_file: the system store knows no test CA
        lines = ""
    with Proxy(server.url, tls_server_context(*pair)) as front:
        run = deliver(tmp_path, front.port, lines)
        assert front.bodies == []  # not a byte of the events went out
    assert run.returncode == 1
    assert "not delivered" in run.stderr
    assert reason in run.stderr, run.stderr
    assert server.db_count("events") == 0
    # the events wait in the outbox for a collector the agent can trust
    assert "1 events stay in the outbox" in run.stderr


@pytest.mark.parametrize("pinned", [False, True])
def test_ca_file_is_the_only_trust_anchor(server, tmp_path, certs, pinned):
    """otherca is in the system trust directory (in a private mount
    namespace), the collector's certificate is from otherca, and
    server.ca_file names goodca: the agent refuses, and a pin of the
    collector's own key does not make up for the unknown CA.  Without
    ca_file the system store, otherca in it, is trusted; ca_file otherca
    is trusted."""
    in_ns = system_trust_with(tmp_path, certs.dir / "otherca.pem")
    pin = f"  pin_sha256: {certs.pin(certs.rogue[0])}\n" if pinned else ""
    for name in ("refused", "system", "own"):
        (tmp_path / name).mkdir()
    with Proxy(server.url, tls_server_context(*certs.rogue)) as front:
        refused = deliver(tmp_path / "refused", front.port, ca_line(certs) + pin,
                          prefix=in_ns)
        assert front.bodies == []  # not a byte of the events went out
        system = deliver(tmp_path / "system", front.port, pin, prefix=in_ns)
        own = deliver(tmp_path / "own", front.port,
                      f"  ca_file: {certs.dir / 'otherca.pem'}\n" + pin, prefix=in_ns)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not delivered" in refused.stderr
    assert ("unknown CA: the collector's certificate is not signed by server.ca_file "
            f"{certs.dir / 'goodca.pem'}") in refused.stderr, refused.stderr
    assert system.returncode == 0, system.stderr
    assert own.returncode == 0, own.stderr
    assert server.db_count("events") == 2


def test_client_certificate_when_the_collector_asks(server, tmp_path, certs):
    ctx = tls_server_context(*certs.good, client_ca=certs.dir / "goodca.pem")
    cert, key = certs.client
    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    with Proxy(server.url, ctx) as front:
        refused = deliver(tmp_path / "without", front.port, ca_line(certs))
        accepted = deliver(tmp_path / "with", front.port,
                           ca_line(certs) + f"  client_cert: {cert}\n  client_key: {key}\n")
    assert refused.returncode == 1, refused.stdout
    assert "not delivered" in refused.stderr
    assert "if the collector requires a client certificate, set server.client_cert" \
        in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert server.db_count("events") == 1


def test_plain_http_needs_to_be_allowed(tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", "http://127.0.0.1:9")
    config.write_text(config.read_text().replace("  allow_plain_http: true\n", ""))
    run = run_agent(config, "--check-config")
    assert run.returncode == 2
    assert "server.url: 'http://127.0.0.1:9' is plain HTTP" in run.stderr


def test_real_https_collector_with_pin_and_client_certificate(tmp_path, tls_certs, certs):
    """End to end over the collector's own TLS (libmicrohttpd + GnuTLS),
    which asks for and verifies a client certificate."""
    srv = Server(tmp_path / "server", ca_file=tls_certs.ca_crt,
                 transport=tls_transport(tls_certs, client_ca=True,
                                         require_client_cert=True))
    # the test's own readiness request needs a client certificate too
    srv.context.load_cert_chain(tls_certs.client_crt, tls_certs.client_key)
    srv.start()
    try:
        lines = (f"  ca_file: {tls_certs.ca_crt}\n"
                 f"  pin_sha256: {certs.pin(tls_certs.server_crt)}\n")
        (tmp_path / "with").mkdir()
        (tmp_path / "without").mkdir()
        accepted = deliver(tmp_path / "with", srv.port,
                           lines + f"  client_cert: {tls_certs.client_crt}\n"
                                   f"  client_key: {tls_certs.client_key}\n")
        refused = deliver(tmp_path / "without", srv.port, lines)
        assert accepted.returncode == 0, accepted.stderr
        assert "delivered 1 events" in accepted.stdout
        assert srv.db_count("events") == 1
        assert refused.returncode == 1
        assert "not delivered" in refused.stderr
        # the collector says why, and the agent passes it on
        assert "HTTP 403" in refused.stderr and "client certificate" in refused.stderr, \
            refused.stderr
        assert srv.db_count("events") == 1
    finally:
        srv.stop()
