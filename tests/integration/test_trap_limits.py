"""Limits on what one sender can make the trap listener store: token
buckets per source and per device (traps.rate_limit), and a cap on the
tickets the fallback opens per device (traps.fallback_max)."""
import socket

from conftest import wait_for
from trap_helpers import LINK_DOWN, TrapServer, capture, link_varbinds

COMMUNITY = "limit-community"


def send_from(srv, source, packets):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        for p in packets:
            s.sendto(p, ("127.0.0.1", srv.trap_port))


def settled(srv, received):
    """/metrics once every one of received traps is stored or refused."""
    def all_in():
        m = srv.metrics()
        done = m["tocsin_traps_matched_total"] + \
            m['tocsin_traps_rejected_total{reason="rate_limited"}']
        return m if done >= received else None
    return wait_for(all_in, what=f"{received} traps to be stored or refused")


def accounted(m):
    """received = stored + rejected + dropped + discovery, as /metrics says."""
    total = lambda prefix: sum(v for k, v in m.items() if k.startswith(prefix))
    return total("tocsin_traps_received_total") == (
        m["tocsin_traps_matched_total"] + m["tocsin_traps_unmatched_total"]
        + total("tocsin_traps_rejected_total") + total("tocsin_traps_dropped_total")
        + m["tocsin_traps_unknown_device_total"] + m["tocsin_traps_discovery_total"])


def test_one_chatty_source_is_limited_and_counted_others_are_not(tmp_path):
    hosts = (f"chatty:\n  snmp:\n    addresses: [127.0.0.1]\n    community: {COMMUNITY}\n"
             f"quiet:\n  snmp:\n    addresses: [127.0.0.5]\n    community: {COMMUNITY}\n")
    srv = TrapServer(tmp_path / "srv", hosts=hosts,
                     traps="rate_limit: {source: 10, source_burst: 20}\n").start()
    try:
        packet = capture(LINK_DOWN, link_varbinds(1, "ge1"), community=COMMUNITY)
        send_from(srv, "127.0.0.1", [packet] * 100)
        m = settled(srv, 100)
        limited = m['tocsin_traps_rejected_total{reason="rate_limited"}']
        # The burst of 20, and what 10/s refilled while they were handled.
        assert 20 <= m["tocsin_traps_matched_total"] <= 40, m
        assert limited == 100 - m["tocsin_traps_matched_total"]
        # Another source is not held back by the chatty one.
        send_from(srv, "127.0.0.5", [packet] * 5)
        m = settled(srv, 105)
        assert m['tocsin_traps_rejected_total{reason="rate_limited"}'] == limited
        assert accounted(m)
        assert "traps.rate_limit" in srv.log_text() and "127.0.0.1" in srv.log_text()
        assert {t["host"] for t in srv.tickets()} == {"chatty", "quiet"}
    finally:
        srv.stop()


def test_a_device_sending_from_several_addresses_shares_one_bucket(tmp_path):
    hosts = (f"multi:\n  snmp:\n    addresses: [127.0.0.1, 127.0.0.6]\n"
             f"    community: {COMMUNITY}\n")
    srv = TrapServer(tmp_path / "srv", hosts=hosts,
                     traps="rate_limit: {source: 0, device: 10, device_burst: 20}\n").start()
    try:
        packet = capture(LINK_DOWN, link_varbinds(1, "ge1"), community=COMMUNITY)
        send_from(srv, "127.0.0.1", [packet] * 50)
        send_from(srv, "127.0.0.6", [packet] * 50)
        m = settled(srv, 100)
        assert 20 <= m["tocsin_traps_matched_total"] <= 40, m
        assert m['tocsin_traps_rejected_total{reason="rate_limited"}'] == \
            100 - m["tocsin_traps_matched_total"]
        assert accounted(m)
    finally:
        srv.stop()


def test_the_fallback_opens_at_most_fallback_max_tickets_per_device(tmp_path):
    hosts = f"noisy:\n  snmp:\n    addresses: [127.0.0.1]\n    community: {COMMUNITY}\n"
    srv = TrapServer(tmp_path / "srv", hosts=hosts, traps="fallback_max: 3\n").start()
    try:
        kinds = [capture(f"1.3.6.1.4.1.99999.0.{i}", community=COMMUNITY)
                 for i in range(1, 7)]
        send_from(srv, "127.0.0.1", kinds)
        srv.wait_metric("tocsin_traps_unmatched_total", 6)
        by_item = {t["item"]: t for t in srv.tickets("open")}
        assert sorted(by_item) == ["1.3.6.1.4.1.99999.0.1", "1.3.6.1.4.1.99999.0.2",
                                   "1.3.6.1.4.1.99999.0.3", "too-many-unmapped-traps"]
        over = by_item["too-many-unmapped-traps"]
        assert over["check"] == "trap" and over["occurrence_count"] == 3
        assert "more than 3 kinds" in over["summary"]
        assert "1.3.6.1.4.1.99999.0.6" in over["summary"]
        assert srv.metric("tocsin_traps_fallback_capped_total") == 3
        # A kind that has its ticket keeps it; a new one goes to the overflow.
        send_from(srv, "127.0.0.1", [kinds[0], capture("1.3.6.1.4.1.99999.0.9",
                                                       community=COMMUNITY)])
        srv.wait_metric("tocsin_traps_unmatched_total", 8)
        by_item = {t["item"]: t for t in srv.tickets("open")}
        assert len(by_item) == 4
        assert by_item["1.3.6.1.4.1.99999.0.1"]["occurrence_count"] == 2
        assert by_item["too-many-unmapped-traps"]["occurrence_count"] == 4
    finally:
        srv.stop()
