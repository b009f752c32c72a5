"""--check-config on both daemons: every error with file:line:column."""
import subprocess

from conftest import binary


def check(name, config):
    return subprocess.run([binary(name), "--config", str(config), "--check-config"],
                          capture_output=True, text=True, timeout=30)


def test_agent_config_ok(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("server:\n  url: http://127.0.0.1:1\n  token: t\n  allow_plain_http: true\n")
    r = check("tocsin-agent", cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "configuration OK"


def test_agent_reports_every_error_with_location(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("server:\n"
                   "  url: ftp://x\n"
                   "  timout: 5s\n"
                   "checks:\n"
                   "  disk:\n"
                   "    warning: lots\n")
    (tmp_path / "agent.d").mkdir()
    (tmp_path / "agent.d" / "10-more.yaml").write_text("checks:\n  disk:\n    interval: never\n")
    r = check("tocsin-agent", cfg)
    assert r.returncode == 2
    err = r.stderr
    assert f"{cfg}:2:8: server.url: 'ftp://x' is not an http:// or https:// URL" in err
    assert f"{cfg}:3:3: server.timout: unknown key 'timout'" in err
    assert f"{cfg}:6:14: checks.disk.warning: expected a percentage" in err
    assert f"{tmp_path}/agent.d/10-more.yaml:3:15: checks.disk.interval: expected a duration" in err
    assert "4 configuration errors" in err


def test_agent_syntax_error(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("server: {url: http://x\n")
    r = check("tocsin-agent", cfg)
    assert r.returncode == 2
    assert f"{cfg}:2:1: YAML syntax error" in r.stderr


def test_server_config_ok_and_errors(tmp_path):
    cfg = tmp_path / "server.yaml"
    cfg.write_text("listen: 127.0.0.1:0\n"
                   "allow_plain_http: true\n"
                   "auth:\n  tokens:\n    - {name: a, token: 0123456789abcdef, role: agent}\n")
    r = check("tocsin-server", cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "configuration OK"

    cfg.write_text("listen: localhost\n"
                   "http:\n  max_body: 1TB\n"
                   "auth:\n  tokens:\n    - {name: a, token: short, role: king}\n")
    r = check("tocsin-server", cfg)
    assert r.returncode == 2
    assert f"{cfg}:1:9: listen: 'localhost' is not host:port" in r.stderr
    assert f"{cfg}:3:13: http.max_body: max_body must be between 1KiB and 256MiB" in r.stderr
    assert "auth.tokens[0].role: 'king' is not one of: agent, technician, viewer, admin" in r.stderr


def test_missing_config_file(tmp_path):
    r = check("tocsin-server", tmp_path / "nope.yaml")
    assert r.returncode == 2
    assert "nope.yaml: cannot read: No such file or directory" in r.stderr


def test_shipped_examples_are_valid():
    from conftest import ROOT
    for name in ("tocsin-agent", "tocsin-server"):
        conf = ROOT / "conf.d" / (name.split("-")[1] + ".yaml")
        r = check(name, conf)
        assert r.returncode == 0, f"{conf}: {r.stderr}"


def test_a_name_that_is_not_utf8_is_refused(tmp_path):
    """What the server hands to JSON (the console's people, queues and
    scales) relies on this: a configuration is UTF-8 or refused."""
    cfg = tmp_path / "server.yaml"
    cfg.write_bytes(b"listen: 127.0.0.1:0\n"
                    b"allow_plain_http: true\n"
                    b"auth:\n  tokens:\n    - {name: a, token: 0123456789abcdef, role: agent}\n"
                    b"people:\n  alice: {name: Alice \xff Adams, email: a@example.com}\n")
    r = check("tocsin-server", cfg)
    assert r.returncode == 2
    # where: libyaml gives only a byte offset for bytes that are not UTF-8
    assert f"{cfg}:7:23: YAML syntax error: invalid leading UTF-8 octet" in r.stderr
