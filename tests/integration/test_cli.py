"""The tocsin CLI: settings from flags, environment or file; clear errors."""
from conftest import TECH_TOKEN, run_cli


def test_settings_from_config_file(server, tmp_path):
    conf = tmp_path / "cli.yaml"
    conf.write_text(f"url: {server.url}\ntoken: {TECH_TOKEN}\n")
    conf.chmod(0o600)  # it holds a token: the CLI refuses it readable by others
    r = run_cli("--config", str(conf), "tickets")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "no open tickets"
    # HOME's ~/.config/tocsin/cli.yaml is found without --config
    (tmp_path / ".config" / "tocsin").mkdir(parents=True)
    (tmp_path / ".config" / "tocsin" / "cli.yaml").write_text(conf.read_text())
    (tmp_path / ".config" / "tocsin" / "cli.yaml").chmod(0o600)
    r = run_cli("tickets", "--json", env={"HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert '"tickets": []' in r.stdout


def test_flags_beat_environment(server):
    r = run_cli("--url", server.url, "tickets",
                env={"TOCSIN_URL": "http://127.0.0.1:9", "TOCSIN_TOKEN": TECH_TOKEN})
    assert r.returncode == 0, r.stderr


def test_errors_are_clear(server, tmp_path):
    env = {"TOCSIN_URL": server.url, "TOCSIN_TOKEN": TECH_TOKEN, "HOME": str(tmp_path)}
    r = run_cli("ticket", "../../etc", env=env)
    assert r.returncode == 2
    assert "a ticket id is a positive number" in r.stderr
    r = run_cli("ticket", "4242", env=env)
    assert r.returncode == 1
    assert "HTTP 404: no ticket 4242" in r.stderr
    r = run_cli("frobnicate", env=env)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = run_cli("tickets", "--state", "sideways", env=env)
    assert r.returncode == 2 and "--state must be open, resolved or all" in r.stderr
    r = run_cli("tickets", env={"HOME": str(tmp_path)})
    assert r.returncode == 2 and "no server URL" in r.stderr
    r = run_cli("tickets", env={**env, "TOCSIN_TOKEN": "wrong-token-0000000000"})
    assert r.returncode == 1 and "HTTP 401: missing or invalid bearer token" in r.stderr
    r = run_cli("tickets", env={**env, "TOCSIN_URL": "http://127.0.0.1:9"})
    assert r.returncode == 1 and "cannot reach http://127.0.0.1:9/api/v1/tickets" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("url: http://x\ntokn: y\n")
    r = run_cli("--config", str(bad), "tickets", env={"HOME": str(tmp_path)})
    assert r.returncode == 2 and f"{bad}:2:1: tokn: unknown key 'tokn'" in r.stderr
