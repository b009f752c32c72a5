"""Fill-rate prediction through the real agent, across restarts.

A tmpfs is filled with real files, 2 MiB per step, and the real agent is
run once per step, each time a new process that knows the history only
from its state database.  The documented test hook TOCSIN_AGENT_TEST_NOW
makes each step ten minutes of agent time, so that hours of samples take
seconds; the usage itself is real.
"""
import re
import sqlite3
import time

from checkutil import MiB, agent_config, metrics_of, rows, run_check, tmpfs, write_file

STEP_S = 600


def test_prediction_across_restarts_warns_then_goes_critical(tmp_path):
    t0 = int(time.time()) - 10 * 86400
    with tmpfs(tmp_path / "vol", "64m") as vol:
        (vol / "noprediction").mkdir()
        config = agent_config(tmp_path / "agent.yaml", f"""\
  heartbeat: {{enabled: false}}
  disk:
    discover: false
    warning: 99%
    critical: 100%
    predict_short_window: 1h
    predict_long_window: 4h
    predict_warning: 12h
    predict_critical: 1h
    mounts:
      - {vol}
      - path: {vol}/noprediction
        predict: false
""")
        states = []
        for i in range(27):
            write_file(vol / f"data{i}", 2 * MiB)
            run = run_check(config, "disk",
                            env={"TOCSIN_AGENT_TEST_NOW": str(t0 + i * STEP_S)})
            assert run.returncode == 0, run.stderr
            assert "test hook TOCSIN_AGENT_TEST_NOW is set" in run.stderr
            r = rows(run.stdout)
            states.append((r[str(vol)][1], r[str(vol)][2], run.stdout))
            # the same file system without prediction never predicts
            assert r[f"{vol}/noprediction"][1] == "ok"
            assert "full in" not in r[f"{vol}/noprediction"][2]

        # 12 MiB an hour into 64 MiB: no prediction before the long window
        # (4 h) is two thirds full of history, then a warning, and critical
        # once less than an hour is left (12 MiB free)
        first_warning = next(i for i, s in enumerate(states) if s[0] != "ok")
        assert 15 <= first_warning <= 18, [s[:2] for s in states]
        for state, summary, _ in states[:first_warning]:
            assert state == "ok" and "full in" not in summary
        state, summary, stdout = states[first_warning]
        assert state == "warning"
        assert re.match(rf"{vol}: full in ~\d+ (h|min) at 2[89]\d MiB/day "
                        r"\(warning within 12 h\); \d+\.\d% used", summary), summary
        m = metrics_of(stdout, str(vol))
        assert 280 * MiB < float(m["fill_rate_bytes_per_day"]) < 300 * MiB
        assert 3600 < int(m["full_in_s"]) < 12 * 3600

        assert [s[0] for s in states[first_warning:25]] == ["warning"] * (25 - first_warning)
        assert states[25][0] == states[26][0] == "critical"
        assert re.search(r"full in ~\d+ (min|h) at .* \(critical within 1 h\)", states[26][1])

    # bounded history: only the long window's samples are kept
    con = sqlite3.connect(tmp_path / "state" / "agent.db")
    n, oldest = con.execute("SELECT count(*), min(t_ms) FROM fill_samples"
                            " WHERE source = 'disk' AND volume = ?", (str(vol),)).fetchone()
    con.close()
    assert n == 25
    assert oldest == (t0 + 2 * STEP_S) * 1000


def test_without_a_state_database_there_is_no_prediction(tmp_path):
    not_a_dir = tmp_path / "state-is-a-file"
    not_a_dir.write_text("")
    config = agent_config(tmp_path / "agent.yaml",
                          "  heartbeat: {enabled: false}\n"
                          "  disk:\n    discover: false\n    mounts: [/]\n",
                          state_dir=not_a_dir)
    run = run_check(config, "disk")
    assert run.returncode == 0, run.stderr
    assert "cannot use the state directory" in run.stderr
    state, summary = rows(run.stdout)["/"][1:]
    assert summary.endswith("; no fill-rate prediction: no state database"), summary
