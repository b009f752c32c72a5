"""A burst of 5,000 traps over 50 interfaces: exactly 50 tickets, and
counters that account for every trap.

The packets are the real snmptrap's, caught once on a socket of ours and
replayed from Python: snmptrap forks per trap and cannot make a burst.
"""
import os
import socket

from conftest import wait_for
from trap_helpers import LINK_DOWN, TrapServer, capture, link_varbinds

COMMUNITY = "burst-community"
INTERFACES = 50
PER_INTERFACE = 100


def test_burst_of_5000_traps_over_50_interfaces_makes_exactly_50_tickets(tmp_path):
    hosts = f"dist-sw:\n  snmp:\n    addresses: [127.0.0.1]\n    community: {COMMUNITY}\n"
    srv = TrapServer(tmp_path / "srv", hosts=hosts,
                     traps="receive_buffer: 32MiB\nbatch: 1000\n").start()
    try:
        packets = [capture(LINK_DOWN, link_varbinds(i, f"ge-0/0/{i}"),
                           community=COMMUNITY) for i in range(INTERFACES)]
        sent = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(PER_INTERFACE):
                for p in packets:
                    s.sendto(p, ("127.0.0.1", srv.trap_port))
                    sent += 1
                # Without root the receive buffer stays at rmem_max: pace.
                if os.geteuid() != 0:
                    srv.wait_metric('tocsin_traps_received_total{version="2c"}', sent)
        assert sent == INTERFACES * PER_INTERFACE == 5000

        srv.wait_metric("tocsin_traps_matched_total", sent, timeout=60)
        m = srv.metrics()
        received = sum(v for k, v in m.items()
                       if k.startswith("tocsin_traps_received_total"))
        rejected = sum(v for k, v in m.items()
                       if k.startswith("tocsin_traps_rejected_total"))
        dropped = sum(v for k, v in m.items()
                      if k.startswith("tocsin_traps_dropped_total"))
        assert m["tocsin_traps_udp_receive_errors_total"] == 0
        # sent = received = matched + unmatched + rejected + dropped
        assert received == sent
        assert received == (m["tocsin_traps_matched_total"]
                            + m["tocsin_traps_unmatched_total"] + rejected + dropped)
        assert (m["tocsin_traps_matched_total"], rejected, dropped) == (5000, 0, 0)
        # Many traps per job: far fewer jobs (and commits) than traps.
        assert m["tocsin_traps_jobs_total"] < 1000

        tickets = srv.tickets("open")
        assert len(tickets) == INTERFACES
        assert sorted(t["item"] for t in tickets) == \
            sorted(f"ge-0/0/{i}" for i in range(INTERFACES))
        assert {t["occurrence_count"] for t in tickets} == {PER_INTERFACE}
        assert srv.db_count("events") == 5000
    finally:
        srv.stop()


def test_traps_beyond_the_backlog_are_dropped_counted_and_logged(tmp_path):
    """The writer held up by a lock on the database: the listener keeps
    traps.backlog traps, drops the rest, says so, and loses nothing else."""
    import sqlite3
    import time
    hosts = f"dist-sw:\n  snmp:\n    addresses: [127.0.0.1]\n    community: {COMMUNITY}\n"
    srv = TrapServer(tmp_path / "srv", hosts=hosts,
                     traps="receive_buffer: 32MiB\nbacklog: 1000\nbatch: 500\n").start()
    blocker = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
    try:
        packet = capture(LINK_DOWN, link_varbinds(1, "ge-0/0/1"), community=COMMUNITY)
        blocker.execute("BEGIN IMMEDIATE")  # the writer waits (busy timeout 5 s)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3000):
                s.sendto(packet, ("127.0.0.1", srv.trap_port))
        # /metrics would wait for the store too: watch the log, which says
        # when dropping starts, and let go well within the busy timeout.
        wait_for(lambda: "traps.backlog" in srv.log.read_text(), timeout=4,
                 what="the listener to log that it drops traps")
        blocker.execute("ROLLBACK")
        settle = time.monotonic() + 20
        while time.monotonic() < settle:
            m = srv.metrics()
            if (m['tocsin_traps_received_total{version="2c"}'] == 3000 and
                    m["tocsin_traps_matched_total"]
                    + m['tocsin_traps_dropped_total{reason="queue_full"}'] >= 3000):
                break
            time.sleep(0.05)
        assert m['tocsin_traps_dropped_total{reason="queue_full"}'] > 0
        assert m["tocsin_traps_matched_total"] + m['tocsin_traps_dropped_total{reason="queue_full"}'] \
            + m['tocsin_traps_dropped_total{reason="store_failed"}'] == 3000
        assert m["tocsin_traps_matched_total"] >= 1000
        assert "dropped" in srv.log.read_text() and "traps.backlog" in srv.log.read_text()
        [t] = srv.tickets()
        assert t["occurrence_count"] == m["tocsin_traps_matched_total"]
    finally:
        blocker.close()
        srv.stop()
