"""ingest.max_keys_per_host: one agent inventing item names cannot make the
collector keep problems and tickets without end."""
import subprocess
import uuid

import pytest

from conftest import Server, binary


def event(item, state="critical"):
    return {"id": str(uuid.uuid4()), "check": "disk", "item": item,
            "state": state, "summary": f"{item} is {state}",
            "observed_at": "2026-11-22T10:00:00Z"}


@pytest.fixture
def capped(tmp_path):
    srv = Server(tmp_path / "srv",
                 extra="ingest:\n  max_keys_per_host: 3\n").start()
    yield srv
    srv.stop()


def post(srv, host, events):
    return srv.post_events({"host": host, "events": events})


def test_new_keys_past_the_cap_refuse_the_batch_whole(capped):
    r = post(capped, "h1", [event("/a"), event("/b"), event("/c")])
    assert r.status == 200, r.body
    flood = [event("/a"), event("/x"), event("/y")]
    r = post(capped, "h1", flood)
    assert r.status == 400, r.body
    assert r.json()["error"] == (
        "host h1 has 3 problem keys and this batch would add 2: more than "
        "ingest.max_keys_per_host (3) on the collector; batch refused")
    # all or nothing: the event of the known key /a is not stored either
    assert capped.db_count("events") == 3
    assert capped.db_count("problems") == 3
    assert len(capped.tickets("open")) == 3
    # a streak of refusals is logged once
    assert post(capped, "h1", flood).status == 400
    # known keys still come in, and so do ok results of new ones
    r = post(capped, "h1", [event("/a", "warning"), event("/b", "ok"),
                            event("/x", "ok")])
    assert r.status == 200, r.body
    assert r.json()["accepted"] == 3
    # another host has a cap of its own
    assert post(capped, "h2", flood).status == 200
    # a new streak is logged again
    assert post(capped, "h1", flood).status == 400
    metrics = capped.get("/metrics").body.decode()
    assert 'tocsin_ingest_batches_total{result="over_key_cap"} 3\n' in metrics
    assert capped.log_text().count("refusing batches of host h1: it has 3 "
                                   "problem keys and a batch would add 2") == 2


def test_the_cap_holds_after_a_restart(capped):
    assert post(capped, "h1", [event("/a"), event("/b"),
                               event("/c")]).status == 200
    capped.stop()
    capped.start()
    assert post(capped, "h1", [event("/d")]).status == 400
    assert capped.db_count("problems") == 3


def test_the_setting_is_checked(tmp_path):
    cfg = tmp_path / "server.yaml"
    cfg.write_text("allow_plain_http: true\n"
                   "ingest:\n  max_keys_per_host: -1\n"
                   "auth:\n  tokens:\n"
                   "    - {name: a, token: 0123456789abcdef, role: agent}\n")
    r = subprocess.run([binary("tocsin-server"), "--config", str(cfg),
                        "--check-config"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"{cfg}:3:22: ingest.max_keys_per_host:" in r.stderr
