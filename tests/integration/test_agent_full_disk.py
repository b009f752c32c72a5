"""The agent's state directory on a real, small tmpfs that fills up: the
outbox cannot be written (ENOSPC), and nothing that can be kept is lost.

The disk check watches that tmpfs itself, so filling it is also what makes
the check go critical, and freeing it what makes it ok again: the events
counted are made by the real check in the real agent, delivered through a
proxy in front of the real collector that can refuse (503) for a while.
"""
import errno
import json
import sqlite3
import uuid

from agentlib import Agent, Proxy, occurrences_match_events
from checkutil import tmpfs
from conftest import wait_for, write_agent_config


def disk_check(mount):
    return ("  disk:\n    interval: 1s\n    discover: false\n"
            "    warning: 90%\n    critical: 95%\n"
            f"    mounts:\n      - {mount}\n")


def fill(mount):
    """Write a file until the file system is full; returns its path."""
    path = mount / "filler"
    with open(path, "wb", buffering=0) as fp:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    fp.write(b"\x5a" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return path


def disk_events(server, item):
    """(id, state) of the disk events for item at the collector, in order."""
    con = sqlite3.connect(server.db)
    try:
        return [(str(uuid.UUID(bytes=i)), s) for i, s in con.execute(
            "SELECT id, state FROM events WHERE check_name = 'disk' AND item = ?"
            " ORDER BY observed_at, seq", (item,))]
    finally:
        con.close()


def changes(states):
    """The states with repeats folded: ok, critical, ok."""
    out = []
    for s in states:
        if not out or out[-1] != s:
            out.append(s)
    return out


def sent_events(proxy, state):
    """Ids of the disk events in state among the requests the proxy saw."""
    return {e["id"] for body in list(proxy.bodies)
            for e in json.loads(body)["events"]
            if e["check"] == "disk" and e["state"] == state}


def agent_on_tmpfs(tmp_path, url, state):
    config = write_agent_config(state / "agent.yaml", url, host="full01",
                                checks=disk_check(state),
                                server_extra="  backoff_max: 1s\n")
    agent = Agent(config)
    agent.log = tmp_path / "agent.log"  # not on the full disk
    return agent


def test_results_held_while_the_disk_is_full_reach_the_collector_once(server, tmp_path):
    """The outbox cannot be written and the collector refuses (503): the
    critical result is held in memory, written to the outbox when the disk
    has room again, and arrives once the collector takes events again."""
    state = tmp_path / "state"
    with tmpfs(state, size="1m"), Proxy(server.url) as proxy:
        agent = agent_on_tmpfs(tmp_path, f"http://127.0.0.1:{proxy.port}", state)
        agent.start()
        try:
            wait_for(lambda: disk_events(server, str(state)), timeout=20,
                     what="the first disk event at the collector")
            proxy.mode = "fail503"
            filler = fill(state)
            agent.wait_log("outbox: cannot write (No space left on device): ")
            # the held critical result, tried directly and refused
            critical = wait_for(lambda: sent_events(proxy, "critical"), timeout=20,
                                what="the held critical result tried directly")
            filler.unlink()
            agent.wait_log("outbox: writable again: ", timeout=20)
            assert critical <= agent.outbox_ids()
            proxy.mode = "pass"
            wait_for(lambda: critical <= {i for i, _ in disk_events(server, str(state))},
                     timeout=20, what="the held critical result at the collector")
            wait_for(lambda: changes(s for _, s in disk_events(server, str(state)))
                     == ["ok", "critical", "ok"], timeout=20,
                     what="the ok after the disk was freed at the collector")
            wait_for(lambda: agent.outbox_count() == 0, timeout=20,
                     what="the outbox to drain")
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    events = disk_events(server, str(state))
    assert len(events) == len({i for i, _ in events})
    text = agent.text()
    assert "events lost" not in text, text
    assert text.count("outbox: cannot write") == 1, text


def test_with_the_collector_there_a_full_disk_delays_nothing(server, tmp_path):
    """The outbox cannot be written but the collector answers: the held
    critical result goes directly, is held no more, and is not written to
    the outbox afterwards (the collector has it once)."""
    state = tmp_path / "state"
    with tmpfs(state, size="1m"):
        agent = agent_on_tmpfs(tmp_path, server.url, state)
        agent.start()
        try:
            wait_for(lambda: disk_events(server, str(state)), timeout=20,
                     what="the first disk event at the collector")
            filler = fill(state)
            wait_for(lambda: "critical" in changes(s for _, s in disk_events(server, str(state))),
                     timeout=20, what="the critical result at the collector")
            agent.wait_log("results held in memory directly to ")
            filler.unlink()
            wait_for(lambda: changes(s for _, s in disk_events(server, str(state)))
                     == ["ok", "critical", "ok"], timeout=20,
                     what="the ok after the disk was freed at the collector")
            wait_for(lambda: agent.outbox_count() == 0, timeout=20,
                     what="the outbox to drain")
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    events = disk_events(server, str(state))
    assert len(events) == len({i for i, _ in events})
    assert "events lost" not in agent.text()


def test_a_held_result_whose_answer_was_lost_is_recognised_when_resent(server, tmp_path):
    """The direct send of a held result reaches the collector, which
    commits it, but the answer never comes back: the result stays held,
    goes to the outbox with the same id when the disk has room, is sent
    again, and the collector counts it once."""
    state = tmp_path / "state"
    with tmpfs(state, size="1m"), Proxy(server.url) as proxy:
        agent = agent_on_tmpfs(tmp_path, f"http://127.0.0.1:{proxy.port}", state)
        agent.start()
        try:
            wait_for(lambda: disk_events(server, str(state)), timeout=20,
                     what="the first disk event at the collector")
            proxy.mode = "stall_after"
            filler = fill(state)
            assert proxy.stalled.wait(20), "the held result was never sent"
            critical = sent_events(proxy, "critical")
            assert critical and critical <= {i for i, _ in disk_events(server, str(state))}
            proxy.mode = "pass"
            proxy.release.set()
            filler.unlink()
            agent.wait_log("outbox: writable again: ", timeout=30)
            wait_for(lambda: changes(s for _, s in disk_events(server, str(state)))
                     == ["ok", "critical", "ok"] and agent.outbox_count() == 0,
                     timeout=30, what="the ok at the collector and the outbox drained")
        finally:
            rc = agent.stop()
    assert rc == 0, agent.text()
    # sent twice (directly, then from the outbox), stored once
    assert sum(1 for body in proxy.bodies for e in json.loads(body)["events"]
               if e["id"] in critical) >= 2 * len(critical)
    events = disk_events(server, str(state))
    assert len(events) == len({i for i, _ in events})
    # the ticket counts the critical once (its ok is linked, not counted)
    assert [occ for occ, _ in occurrences_match_events(server)] == \
        [sum(1 for _, s in events if s == "critical")], events
