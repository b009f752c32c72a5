"""The agent's durable outbox against the real collector, with real
processes stopped and killed for real.

Events come from the real disk check on many named mount points (each a
directory in the test's tmp dir, all on one file system), one event per
mount and interval, so a 1 s interval makes events at a known rate without
any test-only code in the agent.
"""
import json
import re
import signal
import sqlite3

import pytest

from agentlib import (Agent, Proxy, occurrences_match_events, pin_server_port,
                      server_event_ids)
from conftest import Server, run_agent, wait_for, write_agent_config


def disk_checks(tmp_path, n, warning="0%", critical="100%", extra_mounts=()):
    mounts = []
    for i in range(n):
        d = tmp_path / "mnt" / f"m{i:03d}"
        d.mkdir(parents=True, exist_ok=True)
        mounts.append(str(d))
    mounts.extend(extra_mounts)
    return ("  disk:\n    interval: 1s\n    discover: false\n"
            f"    warning: {warning}\n    critical: {critical}\n    mounts:\n" +
            "".join(f"      - {m}\n" for m in mounts))


def agent_config(tmp_path, url, checks, extra="", server_extra=""):
    state = tmp_path / "agent"
    state.mkdir(exist_ok=True)
    return write_agent_config(state / "agent.yaml", url, host="outbox01",
                              checks=checks, extra=extra, server_extra=server_extra)


def ticket_count(server):
    con = sqlite3.connect(server.db)
    try:
        return con.execute("SELECT count(*) FROM tickets").fetchone()[0]
    finally:
        con.close()


def metric(server, name):
    text = server.get("/metrics").body.decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def test_collector_outage_1000_events_all_arrive_once(server, tmp_path):
    pin_server_port(server)
    config = agent_config(tmp_path, server.url, disk_checks(tmp_path, 200),
                          extra="outbox:\n  batch_events: 500\n",
                          server_extra="  backoff_max: 2s\n")
    agent = Agent(config).start()
    try:
        wait_for(lambda: ticket_count(server) == 200, timeout=20,
                 what="a ticket for each of the 200 mounts")
        server.stop()
        wait_for(lambda: agent.outbox_count() >= 1000, timeout=40,
                 what="1,000 events queued while the collector is down")
        queued = agent.outbox_ids()
        assert len(queued) >= 1000
        server.start()
        wait_for(lambda: queued <= set(server_event_ids(server)), timeout=30,
                 what="every event queued during the outage at the collector")
    finally:
        rc = agent.stop()
    assert rc == 0, agent.text()
    # one ticket per problem key, and no event counted twice
    assert ticket_count(server) == 200
    counts = occurrences_match_events(server)
    assert all(occ == linked for occ, linked in counts), counts
    assert sum(occ for occ, _ in counts) == len(server_event_ids(server))
    # nothing was dropped or refused on the way
    meta = agent.outbox_meta()
    assert (meta["dropped_repeats"], meta["dropped_changes"], meta["rejected"]) == (0, 0, 0)
    text = agent.text()
    assert "cannot reach the collector at" in text
    assert re.search(r"delivering to http://127\.0\.0\.1:\d+ again after \d+ failed attempts", text)


@pytest.mark.parametrize("mode", ["stall_before", "stall_after"])
def test_agent_killed_mid_batch_loses_nothing_duplicates_nothing(server, tmp_path, mode):
    """stall_before: the collector never saw the batch; stall_after: it
    committed the batch but the answer never came back.  Either way the
    restarted agent resends the same ids: all arrive, none twice."""
    with Proxy(server.url) as proxy:
        proxy.mode = mode
        config = agent_config(tmp_path, f"http://127.0.0.1:{proxy.port}",
                              disk_checks(tmp_path, 3))
        config.write_text(config.read_text().replace("timeout: 5s", "timeout: 60s"))
        assert "timeout: 60s" in config.read_text()
        agent = Agent(config).start()
        try:
            assert proxy.stalled.wait(20), "the agent never sent a batch"
            in_flight = set(proxy.ids_in(0))
            assert len(in_flight) == 3
            agent.stop(signal.SIGKILL)

            # the killed agent's outbox still holds the batch in flight
            kept = agent.outbox_ids()
            assert in_flight <= kept
            at_server = set(server_event_ids(server))
            if mode == "stall_after":
                assert in_flight <= at_server  # committed, answer lost
            else:
                assert not (in_flight & at_server)

            proxy.mode = "pass"
            proxy.release.set()
            agent = Agent(config).start()
            wait_for(lambda: kept <= set(server_event_ids(server)), timeout=20,
                     what="the resent events at the collector")
            wait_for(lambda: agent.outbox_count() == 0 or
                     not (kept & agent.outbox_ids()), timeout=10,
                     what="the resent batch to leave the outbox")
            rc = agent.stop()
        finally:
            agent.stop()
    assert rc == 0, agent.text()
    assert ticket_count(server) == 3
    counts = occurrences_match_events(server)
    assert all(occ == linked for occ, linked in counts), counts
    if mode == "stall_after":
        # the resend was recognised, not stored again
        assert metric(server, "tocsin_events_deduplicated_total") >= 3
    # the batch we killed went out exactly twice: once cut off, once for good
    sends = [b for b in proxy.bodies
             if in_flight & {e["id"] for e in json.loads(b)["events"]}]
    assert len(sends) == 2


def test_outbox_full_keeps_state_changes_and_reports_drops(tmp_path):
    srv = Server(tmp_path / "server").start()
    try:
        pin_server_port(srv)
        url = srv.url
    finally:
        srv.stop()  # the collector is down from the start
    config = agent_config(tmp_path, url, disk_checks(tmp_path, 4, warning="0%"),
                          extra="outbox:\n  max_events: 20\n",
                          server_extra="  backoff_max: 1s\n")
    agent = Agent(config).start()
    try:
        # 4 warnings, then repeats: the outbox fills and sheds repeats
        wait_for(lambda: agent.outbox_meta().get("dropped_repeats", 0) >= 8, timeout=30,
                 what="repeated samples dropped from the full outbox")
        # the problem goes away while the collector is still down
        config.write_text(config.read_text().replace("warning: 0%", "warning: 100%"))
        agent.send_signal(signal.SIGHUP)
        agent.wait_log("configuration reloaded")
        wait_for(lambda: agent.outbox_meta()["dropped_repeats"] >= 20, timeout=30,
                 what="more repeats dropped after the change")
        agent.wait_log("outbox full (")
        meta = agent.outbox_meta()
        assert meta["dropped_changes"] == 0
        srv.start()
        wait_for(lambda: any(t["check"] == "agent" for t in srv.tickets("all")),
                 timeout=20, what="the drop report at the collector")
        rc = agent.stop()
        assert rc == 0, agent.text()
        tickets = srv.tickets("all")
        detail = [srv.ticket(t["id"]) for t in tickets if t["check"] == "agent"]
    finally:
        agent.stop()
        srv.stop()
    disk = [t for t in tickets if t["check"] == "disk"]
    # every mount's warning and its recovery arrived: the state changes
    assert len(disk) == 4
    assert all(t["worst_state"] == "warning" and t["state"] == "ok" for t in disk), disk
    assert len(detail) == 1 and detail[0]["item"] == "outbox"
    summaries = [o["summary"] for o in detail[0]["occurrences"]]
    warn = [s for s in summaries if s.startswith("outbox full: ")]
    assert warn, summaries
    m = re.match(r"outbox full: ([\d,]+) repeated samples dropped since \d{4}-\d\d-\d\d \d\d:\d\d UTC$",
                 warn[0])
    assert m, warn[0]
    assert int(m.group(1).replace(",", "")) >= 20
    assert "outbox full (" in agent.text()


def test_refused_event_is_dropped_and_the_rest_delivered(server, tmp_path):
    """An event the collector can never take (a context over its 64 KiB:
    the updates check lists up to 100 pending packages with their versions,
    and this stand-in for apt-get gives them 700-character versions) is
    split out of its batch and dropped; the others arrive.  (Items and
    summaries cannot be refused any more: the checks cut them to what the
    collector takes.)"""
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\n"
                   "v=$(head -c 700 /dev/zero | tr '\\0' 1)\n"
                   "for i in $(seq 1 100); do\n"
                   "  echo \"Inst pkg$i [$v] (${v}2 Debian:12/stable [amd64])\"\n"
                   "done\n")
    apt.chmod(0o755)
    updates = (f"  updates:\n    apt_get: {apt}\n    apt_config: /bin/true\n"
               f"    lists_dir: {tmp_path}\n    history_log: ''\n    dpkg_log: ''\n"
               f"    reboot_required_file: {tmp_path}/no-reboot-required\n")
    config = agent_config(tmp_path, server.url, disk_checks(tmp_path, 5) + updates)
    run = run_agent(config, "--once")
    assert run.returncode == 0, run.stderr
    assert "the collector refused an event for good (HTTP 400" in run.stderr
    # the 5 disk results, the 6 updates items but pending, and the
    # agent's own reports
    assert "delivered 12 events" in run.stdout, run.stdout
    assert "pending" not in [t["item"] for t in server.tickets("all")]
    # the disk warnings, the lists' (no package lists in tmp_path) and the
    # agent's report of the refusal: later results follow the refused one,
    # so the report goes out with them, and its count starts again
    assert ticket_count(server) == 7
    report = [t for t in server.tickets("all") if t["check"] == "agent"]
    assert report and "1 events refused by the collector" in report[0]["summary"]
    assert Agent(config).outbox_meta()["rejected"] == 0


def test_batch_too_large_is_split_until_it_fits(tmp_path):
    srv = Server(tmp_path / "server", max_body="1KiB").start()
    try:
        config = agent_config(tmp_path, srv.url, disk_checks(tmp_path, 12))
        run = run_agent(config, "--once")
        assert run.returncode == 0, run.stderr
        assert "the collector refused a batch of 12 events (HTTP 413" in run.stderr
        assert "delivered 12 events" in run.stdout
        assert ticket_count(srv) == 12
    finally:
        srv.stop()


def test_new_keys_past_the_collectors_cap_are_dropped_the_rest_delivered(tmp_path):
    """ingest.max_keys_per_host refuses a batch whole (400); the agent
    splits it, so the results of the keys the collector knows, and of new
    keys while they fit, arrive, and only the new keys past the cap are
    dropped."""
    srv = Server(tmp_path / "server",
                 extra="ingest:\n  max_keys_per_host: 5\n").start()
    try:
        config = agent_config(tmp_path, srv.url, disk_checks(tmp_path, 8))
        run = run_agent(config, "--once")
        assert run.returncode == 0, run.stderr
        assert "the collector refused a batch of" in run.stderr
        assert "the collector refused an event for good (HTTP 400: host " \
               "outbox01 has 5 problem keys" in run.stderr
        disk = [t for t in srv.tickets("all") if t["check"] == "disk"]
        assert len(disk) == 5
        assert srv.db_count("problems") == 5
    finally:
        srv.stop()
