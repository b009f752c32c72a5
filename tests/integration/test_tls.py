"""HTTPS with certificates made by openssl in the test; plain HTTP only when
allowed explicitly; client certificates when configured."""
import socket
import ssl
import subprocess
import urllib.error
import uuid

import pytest

from conftest import (AGENT_TOKEN, Server, binary, http, tls_transport,
                      wait_for)


def batch(host="tls-host"):
    return {"host": host, "events": [{
        "id": str(uuid.uuid4()), "check": "disk", "item": "/", "state": "warning",
        "summary": "/ is 91% full", "observed_at": "2026-11-22T10:00:00Z"}]}


@pytest.fixture
def tls_server(tmp_path, tls_certs):
    srv = Server(tmp_path / "server", transport=tls_transport(tls_certs),
                 ca_file=tls_certs.ca_crt).start()
    yield srv
    srv.stop()


def test_https_serves_with_the_configured_certificate(tls_server, tls_certs):
    assert tls_server.url.startswith("https://127.0.0.1:")
    r = tls_server.post_events(batch())
    assert r.status == 200, r.body
    assert r.json()["accepted"] == 1
    # the certificate the server presents is the configured one
    pem = ssl.get_server_certificate(("127.0.0.1", tls_server.port))
    configured = tls_certs.server_crt.read_text()
    assert ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(configured)
    assert "HTTPS" in tls_server.log_text()
    assert "plain HTTP" not in tls_server.log_text()


def test_https_client_without_the_ca_refuses_the_server(tls_server):
    with pytest.raises(urllib.error.URLError) as err:
        http("GET", tls_server.url + "/healthz",
             context=ssl.create_default_context())
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(4096)
    assert b"HTTP/1.1 200" not in data
    assert b'"status"' not in data


def test_without_tls_the_server_refuses_to_start(tmp_path):
    srv = Server(tmp_path / "server", transport="")
    r = subprocess.run([binary("tocsin-server"), "--config", str(srv.config)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "no tls: section: configure tls.cert and tls.key, or set " \
           "allow_plain_http: true" in r.stderr


def test_plain_http_when_allowed_logs_a_warning(server):
    assert server.url.startswith("http://")
    assert server.post_events(batch()).status == 200
    assert "warning: serving plain HTTP (allow_plain_http: true)" in server.log_text()


def test_tls_configuration_errors_name_the_key(tmp_path, tls_certs):
    srv = Server(tmp_path / "server", transport=(
        f"tls:\n  cert: {tls_certs.server_crt}\n  key: {tls_certs.client_key}\n"
        f"  client_ca: {tmp_path}/missing.crt\n"))
    r = subprocess.run([binary("tocsin-server"), "--config", str(srv.config),
                        "--check-config"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    text = r.stderr
    assert f"{srv.config}:5:8: tls.key: the certificate and key cannot be used" in text
    assert f"{srv.config}:6:14: tls.client_ca: cannot read {tmp_path}/missing.crt: " \
           "No such file or directory" in text


def test_require_client_cert_without_client_ca_is_an_error(tmp_path, tls_certs):
    srv = Server(tmp_path / "server", transport=tls_transport(tls_certs) +
                 "  require_client_cert: true\n")
    r = subprocess.run([binary("tocsin-server"), "--config", str(srv.config),
                        "--check-config"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "tls.require_client_cert: require_client_cert needs client_ca" in r.stderr


@pytest.fixture
def mtls_server(tmp_path, tls_certs):
    srv = Server(tmp_path / "server",
                 transport=tls_transport(tls_certs, client_ca=True,
                                         require_client_cert=True),
                 ca_file=tls_certs.ca_crt)
    # readiness needs a client certificate too
    srv.context.load_cert_chain(tls_certs.client_crt, tls_certs.client_key)
    srv.start()
    yield srv
    srv.stop()


def context_with(certs, crt=None, key=None):
    ctx = ssl.create_default_context(cafile=str(certs.ca_crt))
    if crt:
        ctx.load_cert_chain(crt, key)
    return ctx


def test_client_certificates(mtls_server, tls_certs):
    url = mtls_server.url + "/api/v1/events"
    import json
    body = json.dumps(batch()).encode()

    ok = http("POST", url, body=body, token=AGENT_TOKEN,
              context=context_with(tls_certs, tls_certs.client_crt, tls_certs.client_key))
    assert ok.status == 200, ok.body

    none = http("POST", url, body=body, token=AGENT_TOKEN, context=context_with(tls_certs))
    assert none.status == 403
    assert none.json()["error"] == \
        "a client certificate signed by the configured client_ca is required"

    rogue = http("POST", url, body=body, token=AGENT_TOKEN,
                 context=context_with(tls_certs, tls_certs.rogue_crt, tls_certs.rogue_key))
    assert rogue.status == 403
    assert rogue.json()["error"].startswith("the client certificate is not accepted: ")
    assert mtls_server.db_count("events") == 1


def s_client(port, *args):
    """openssl s_client's handshake with the server: (succeeded, output)."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-brief", *args], input=b"", capture_output=True, timeout=20)
    out = (r.stdout + r.stderr).decode(errors="replace")
    return "Protocol version" in out and "CONNECTION ESTABLISHED" in out, out


def test_only_modern_suites_are_offered(tls_server):
    ok, out = s_client(tls_server.port, "-tls1_3")
    assert ok, out
    ok, out = s_client(tls_server.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert ok, out
    # CBC with SHA-1 or SHA-2 MACs, static RSA, TLS 1.1 and older: refused
    for args in (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
                 ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"],
                 ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
                 ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]):
        ok, out = s_client(tls_server.port, *args)
        assert not ok, (args, out)


def test_a_client_certificate_not_meant_for_clients_is_refused(mtls_server, tls_certs):
    crt, key = tls_certs.issue("serveronly", "client_ca", "extendedKeyUsage=serverAuth")
    import json
    r = http("POST", mtls_server.url + "/api/v1/events", body=json.dumps(batch()).encode(),
             token=AGENT_TOKEN, context=context_with(tls_certs, crt, key))
    assert r.status == 403
    assert r.json()["error"].startswith("the client certificate is not accepted: ")
    assert "purpose" in r.json()["error"]
    # one explicitly meant for clients is fine
    crt, key = tls_certs.issue("clientauth", "client_ca", "extendedKeyUsage=clientAuth")
    r = http("POST", mtls_server.url + "/api/v1/events", body=json.dumps(batch()).encode(),
             token=AGENT_TOKEN, context=context_with(tls_certs, crt, key))
    assert r.status == 200, r.body


def test_keep_alive_requests_reuse_the_verdict_on_the_client_certificate(mtls_server, tls_certs):
    """Many requests on one connection all get the same answer; the rogue
    certificate stays refused on its connection."""
    import http.client
    import json
    for crt, key, want in ((tls_certs.client_crt, tls_certs.client_key, 200),
                           (tls_certs.rogue_crt, tls_certs.rogue_key, 403)):
        conn = http.client.HTTPSConnection("127.0.0.1", mtls_server.port, timeout=10,
                                           context=context_with(tls_certs, crt, key))
        for _ in range(20):
            conn.request("POST", "/api/v1/events", body=json.dumps(batch()),
                         headers={"Authorization": f"Bearer {AGENT_TOKEN}",
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == want
        conn.close()
    assert mtls_server.db_count("events") == 20


def test_sighup_renews_the_certificate_without_a_restart(tmp_path, tls_certs):
    srv = Server(tmp_path / "server", transport=tls_transport(tls_certs),
                 ca_file=tls_certs.ca_crt).start()
    try:
        port = srv.port
        before = ssl.get_server_certificate(("127.0.0.1", port))
        crt, key = tls_certs.issue("renewed", "ca",
                                   "subjectAltName=IP:127.0.0.1,DNS:localhost")
        import signal
        srv.write_config(transport=f"tls:\n  cert: {crt}\n  key: {key}\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: new connections get the new TLS certificate"
                 in srv.log_text(), what="the certificate reload")
        after = ssl.get_server_certificate(("127.0.0.1", port))
        assert ssl.PEM_cert_to_DER_cert(after) == ssl.PEM_cert_to_DER_cert(crt.read_text())
        assert after != before
        assert srv.post_events(batch()).status == 200  # verified against the CA
        assert "tls (turning HTTPS on or off) changed" not in srv.log_text()
        # a key that does not match is refused whole; the renewed pair stays
        srv.write_config(transport=f"tls:\n  cert: {tls_certs.server_crt}\n  key: {key}\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in srv.log_text(),
                 what="the refused reload")
        again = ssl.get_server_certificate(("127.0.0.1", port))
        assert ssl.PEM_cert_to_DER_cert(again) == ssl.PEM_cert_to_DER_cert(crt.read_text())
    finally:
        srv.stop()
