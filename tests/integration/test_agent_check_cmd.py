"""First look after install: `tocsin-agent check [NAME...]` and --dry-run
print every result with its metrics as a table and deliver nothing."""
import subprocess

from checkutil import agent_config, metrics_of, rows, run_check
from conftest import assert_no_sanitizer_errors, binary, write_agent_config


def test_check_runs_only_the_named_checks(tmp_path):
    config = agent_config(tmp_path / "agent.yaml",
                          "  disk:\n    discover: false\n    mounts: [/]\n")
    run = run_check(config, "disk")
    assert run.returncode == 0, run.stderr
    r = rows(run.stdout)
    assert list(r) == ["/"]
    assert r["/"][0] == "disk" and r["/"][1] in ("ok", "warning", "critical")
    # metrics on the line below, raw and in human units
    m = metrics_of(run.stdout, "/")
    assert {"total_bytes", "used_bytes", "free_bytes", "used_percent"} <= set(m)
    assert "(" in run.stdout.splitlines()[2]  # "total_bytes=... (252 GiB)"

    both = run_check(config, "heartbeat", "disk")
    assert both.returncode == 0, both.stderr
    # in table order, whatever the order on the command line
    assert [v[0] for v in rows(both.stdout).values()] == ["disk", "heartbeat"]


def test_check_refuses_unknown_and_disabled_names(tmp_path):
    config = agent_config(tmp_path / "agent.yaml",
                          "  disk:\n    discover: false\n  heartbeat:\n    enabled: false\n")
    run = run_check(config, "dsik")
    assert run.returncode == 2
    assert ("there is no check named 'dsik' (checks: disk, backup, updates, services, "
            "plugin, heartbeat)") in run.stderr
    run = run_check(config, "heartbeat")
    assert run.returncode == 2
    assert "the heartbeat check is not enabled in the configuration" in run.stderr
    assert run.stdout == ""


def test_bad_test_clock_is_refused(tmp_path):
    config = agent_config(tmp_path / "agent.yaml", "  disk:\n    discover: false\n")
    run = run_check(config, env={"TOCSIN_AGENT_TEST_NOW": "yesterday"})
    assert run.returncode == 2
    assert ("TOCSIN_AGENT_TEST_NOW: 'yesterday' is not an RFC 3339 time or seconds "
            "since the epoch") in run.stderr


def test_dry_run_prints_all_and_delivers_nothing(server, tmp_path):
    config = write_agent_config(tmp_path / "agent.yaml", server.url,
                                checks="  disk:\n    discover: false\n    mounts: [/]\n"
                                       "  heartbeat: {}\n")
    run = subprocess.run([binary("tocsin-agent"), "--config", str(config), "--dry-run"],
                         capture_output=True, text=True, timeout=60)
    assert_no_sanitizer_errors(run.stderr, "tocsin-agent")
    assert run.returncode == 0, run.stderr
    assert set(rows(run.stdout)) == {"/", "alive"}
    assert "delivered" not in run.stdout
    assert server.db_count("events") == 0


def test_commented_examples_are_valid_when_uncommented(tmp_path):
    """conf.d/agent.d/ examples are mostly comments; uncommented (every
    "#key:" and "#  - item" line loses its '#', prose "# ..." stays) each
    must pass --check-config."""
    import re
    from conftest import ROOT
    for name in ("10-disk.yaml", "20-backup.yaml", "40-plugins.yaml", "50-heartbeat.yaml"):
        text = (ROOT / "conf.d" / "agent.d" / name).read_text()
        live = "\n".join(re.sub(r"^(\s+)#(?=[a-z_]+:|\s+(- |[a-z_]+:))", r"\1",
                                 re.sub(r"^#(?=\S|  )", "", line))
                          for line in text.splitlines())
        assert "#" not in "".join(line.split("#")[0] for line in live.splitlines()
                                  if re.match(r"\s*[a-z_]+:", line)), name
        d = tmp_path / name
        (d / "agent.d").mkdir(parents=True)
        (d / "agent.d" / name).write_text(live + "\n")
        (d / "agent.yaml").write_text("server:\n  url: https://127.0.0.1:9\n  token: t\n")
        r = subprocess.run([binary("tocsin-agent"), "--config", str(d / "agent.yaml"),
                            "--check-config"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{name} uncommented:\n{live}\n{r.stderr}"
