"""SNMP traps into tickets: the real tocsin-server's trap listener against
the real net-snmp clients (snmptrap, snmpinform) and raw UDP."""
import os
import socket
import sqlite3
import subprocess

import pytest

from ber import INFORM, integer, octets, v2c, v3_noauth

from conftest import TECH_TOKEN, assert_no_sanitizer_errors, binary, run_cli, wait_for
from trap_helpers import (IF_DESCR, IF_INDEX, IF_NAME, LINK_DOWN, LINK_UP, SYS_NAME0,
                          TrapServer, capture, link_varbinds, snmptrap, varbinds)

COMMUNITY = "s3cret-community"
ENGINE = "0x8000000001020304"
USERS = """\
users:
  - name: netops
    auth: sha256
    auth_key: auth-pass-123
    priv: aes
    priv_key: priv-pass-123
    engine_ids: [0x8000000001020304]
  - name: roaming
    auth: sha
    auth_key: roam-auth-123
    priv: aes
    priv_key: roam-priv-123
"""
HOSTS = f"""\
core-sw1:
  role: central
  snmp:
    addresses: [127.0.0.1]
    community: {COMMUNITY}
edge-rtr:
  role: central
  snmp:
    addresses: [192.0.2.7]
    community: {COMMUNITY}
v3-switch:
  snmp:
    engine_id: {ENGINE}
    addresses: [127.0.0.4]
    users: [netops]
roamer:
  snmp:
    addresses: [127.0.0.3]
    users: [roaming]
branch-fw:
  snmp:
    sys_name: fw.branch.example
    community: {COMMUNITY}
"""

V3_RIGHT = ["-e", ENGINE, "-u", "netops", "-l", "authPriv", "-a", "SHA-256",
            "-A", "auth-pass-123", "-x", "AES", "-X", "priv-pass-123"]
ROAMING = ["-u", "roaming", "-l", "authPriv", "-a", "SHA", "-A", "roam-auth-123",
           "-x", "AES", "-X", "roam-priv-123"]
# Addresses of the loopback: v3-switch's, roamer's, and one no device has
# (a NAT gateway, a proxy, or someone else).
V3_SWITCH, ROAMER, UNCONFIGURED = "127.0.0.4", "127.0.0.3", "127.0.0.2"


@pytest.fixture
def traps(tmp_path):
    srv = TrapServer(tmp_path / "srv", traps=USERS, hosts=HOSTS).start()
    yield srv
    srv.stop()


def tickets_of(srv, host, state="all"):
    return [t for t in srv.tickets(state) if t["host"] == host]


def test_v2c_link_down_opens_one_ticket_again_adds_an_occurrence_up_resolves(traps):
    vbs = link_varbinds(3, "Gi0/3")
    assert snmptrap(traps.trap_port, LINK_DOWN, vbs, community=COMMUNITY).returncode == 0
    traps.wait_metric("tocsin_traps_matched_total", 1)
    [t] = tickets_of(traps, "core-sw1")
    assert (t["check"], t["item"], t["state"]) == ("link", "Gi0/3", "critical")
    assert t["summary"] == ("Gi0/3 on core-sw1 is down "
                            "(ifIndex 3, adminStatus up, operStatus down)")

    assert snmptrap(traps.trap_port, LINK_DOWN, vbs, community=COMMUNITY).returncode == 0
    traps.wait_metric("tocsin_traps_matched_total", 2)
    [again] = tickets_of(traps, "core-sw1")
    assert again["id"] == t["id"]
    assert again["occurrence_count"] == 2
    assert again["status"] == "new"

    up = link_varbinds(3, "Gi0/3", oper=1)
    assert snmptrap(traps.trap_port, LINK_UP, up, community=COMMUNITY).returncode == 0
    traps.wait_metric("tocsin_traps_matched_total", 3)
    [done] = tickets_of(traps, "core-sw1")
    assert done["id"] == t["id"] and done["status"] == "resolved"
    detail = traps.ticket(t["id"])
    assert [j["action"] for j in detail["journal"]] == ["opened", "resolved"]
    # The occurrence keeps what the trap said, for the technician.
    ctx = detail["occurrences"][-1]["context"]
    assert ctx["trap"] == "linkDown" and ctx["source"] == "127.0.0.1"
    assert ctx["varbinds"]["ifName.3"] == "Gi0/3"
    assert ctx["varbinds"]["ifAdminStatus.3"] == "up(1)"
    assert ctx["mapping"] == "link-down" and ctx["version"] == "2c"


def test_interface_without_ifname_is_named_by_ifdescr_then_ifindex(traps):
    vbs = link_varbinds(9) + varbinds((f"{IF_DESCR}.9", "s", "eth9"))
    snmptrap(traps.trap_port, LINK_DOWN, vbs, community=COMMUNITY)
    snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(12), community=COMMUNITY)
    traps.wait_metric("tocsin_traps_matched_total", 2)
    items = sorted(t["item"] for t in tickets_of(traps, "core-sw1"))
    assert items == ["12", "eth9"]


def test_v1_trap_is_tied_to_its_device_by_agent_addr(traps):
    # From an address no device has (NAT): agent-addr says edge-rtr.
    proc = snmptrap(traps.trap_port, None, link_varbinds(2, "wan0"), version="1",
                    community=COMMUNITY, source=UNCONFIGURED,
                    v1=("1.3.6.1.4.1.9.1.1", "192.0.2.7", 2, 0))
    assert proc.returncode == 0, proc.stderr
    traps.wait_metric("tocsin_traps_matched_total", 1)
    [t] = tickets_of(traps, "edge-rtr")
    assert (t["check"], t["item"]) == ("link", "wan0")
    assert tickets_of(traps, "core-sw1") == []
    assert traps.metric('tocsin_traps_received_total{version="1"}') == 1
    # From core-sw1's own address the same claim changes nothing: its trap.
    snmptrap(traps.trap_port, None, link_varbinds(3, "wan1"), version="1",
             community=COMMUNITY, v1=("1.3.6.1.4.1.9.1.1", "192.0.2.7", 2, 0))
    traps.wait_metric("tocsin_traps_matched_total", 2)
    assert [t["item"] for t in tickets_of(traps, "core-sw1")] == ["wan1"]
    # RFC 3584 3.1: the enterprise of a generic trap is kept as a varbind.
    ctx = traps.ticket(t["id"])["occurrences"][0]["context"]
    assert ctx["varbinds"]["snmpTrapEnterprise.0"] == "1.3.6.1.4.1.9.1.1"


def test_sysname_varbind_identifies_a_device_behind_nat(traps):
    vbs = varbinds((SYS_NAME0, "s", "FW.branch.example")) + link_varbinds(1, "lan")
    snmptrap(traps.trap_port, LINK_DOWN, vbs, community=COMMUNITY,
             source=UNCONFIGURED)
    traps.wait_metric("tocsin_traps_matched_total", 1)
    assert [t["item"] for t in tickets_of(traps, "branch-fw")] == ["lan"]


def test_a_device_whose_sysname_is_another_hosts_name_stays_itself(traps):
    # core-sw1 calls itself edge-rtr: found by its address, it is core-sw1.
    vbs = varbinds((SYS_NAME0, "s", "EDGE-RTR")) + link_varbinds(1, "uplink")
    snmptrap(traps.trap_port, LINK_DOWN, vbs, community=COMMUNITY)
    traps.wait_metric("tocsin_traps_matched_total", 1)
    assert [t["item"] for t in tickets_of(traps, "core-sw1")] == ["uplink"]
    assert tickets_of(traps, "edge-rtr") == []


def test_v3_authpriv_accepted_with_the_right_keys_and_rejected_with_wrong_ones(traps):
    port = traps.trap_port
    ok = snmptrap(port, LINK_DOWN, link_varbinds(4, "xe-0/0/4"), version="3",
                  extra=V3_RIGHT, source=V3_SWITCH)
    assert ok.returncode == 0, ok.stderr
    traps.wait_metric("tocsin_traps_matched_total", 1)
    [t] = tickets_of(traps, "v3-switch")
    assert t["item"] == "xe-0/0/4"

    def wrong(**change):
        args = list(V3_RIGHT)
        for flag, value in change.items():
            args[args.index("-" + flag) + 1] = value
        snmptrap(port, LINK_DOWN, link_varbinds(5, "xe-0/0/5"), version="3",
                 extra=args, source=V3_SWITCH)

    wrong(A="wrong-auth-123")
    traps.wait_metric('tocsin_traps_rejected_total{reason="auth_failure"}', 1)
    wrong(X="wrong-priv-123")
    traps.wait_metric('tocsin_traps_rejected_total{reason="decryption_failure"}', 1)
    wrong(u="mallory")
    traps.wait_metric('tocsin_traps_rejected_total{reason="unknown_user"}', 1)
    # authNoPriv for a user set up with privacy is refused too.
    snmptrap(port, LINK_DOWN, link_varbinds(6), version="3", source=V3_SWITCH,
             extra=["-e", ENGINE, "-u", "netops", "-l", "authNoPriv", "-a",
                    "SHA-256", "-A", "auth-pass-123"])
    traps.wait_metric('tocsin_traps_rejected_total{reason="security_level"}', 1)
    m = traps.metrics()
    assert m['tocsin_traps_received_total{version="3"}'] == 5
    assert m["tocsin_traps_matched_total"] == 1
    assert [t["item"] for t in tickets_of(traps, "v3-switch")] == ["xe-0/0/4"]


def test_v3_engine_id_identifies_a_device_from_an_unconfigured_address(traps):
    ok = snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(8, "xe-0/0/8"),
                  version="3", extra=V3_RIGHT, source=UNCONFIGURED)
    assert ok.returncode == 0, ok.stderr
    traps.wait_metric("tocsin_traps_matched_total", 1)
    assert [t["item"] for t in tickets_of(traps, "v3-switch")] == ["xe-0/0/8"]


def test_v3_user_without_engine_ids_is_localised_to_a_new_engine_on_first_use(traps):
    # roaming has no engine_ids: its first authentic trap from an engine
    # localises it there; a forged one with a wrong key leaves nothing.
    args = ["-e", "0x80000000aabbccdd"] + ROAMING
    bad = list(args)
    bad[bad.index("-A") + 1] = "forged-auth-1"
    snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(1, "x"), version="3",
             extra=bad, source=ROAMER)
    traps.wait_metric('tocsin_traps_rejected_total{reason="auth_failure"}', 1)
    assert traps.metric("tocsin_traps_v3_engines_discovered") == 0
    # From roamer's address, which lists roaming.
    snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(1, "x"), version="3",
             extra=args, source=ROAMER)
    traps.wait_metric("tocsin_traps_matched_total", 1)
    assert traps.metric("tocsin_traps_v3_engines_discovered") == 1
    assert [t["item"] for t in tickets_of(traps, "roamer")] == ["x"]


def test_keyless_v3_traps_leave_no_localised_users_behind(traps):
    """The reviewer's case: 4,100 noAuthNoPriv traps, each from a new engine
    id, naming a user without engine_ids, were localised and filled the
    table of discovered engines (4,096), after which genuine traps from new
    engines were refused until a restart."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ROAMER, 0))
        for i in range(4100):
            engine = b"\x80\x00\x00\x00\x05" + i.to_bytes(4, "big")
            s.sendto(v3_noauth(engine, "roaming", LINK_DOWN, []),
                     ("127.0.0.1", traps.trap_port))
    traps.wait_metric('tocsin_traps_received_total{version="3"}', 4100, timeout=60)
    m = traps.metrics()
    assert m['tocsin_traps_rejected_total{reason="security_level"}'] == 4100
    assert m["tocsin_traps_v3_engines_discovered"] == 0
    # A genuine trap from yet another engine is still localised and taken.
    ok = snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(1, "real"), version="3",
                  extra=["-e", "0x80000000aabbccdd"] + ROAMING, source=ROAMER)
    assert ok.returncode == 0, ok.stderr
    traps.wait_metric("tocsin_traps_matched_total", 1)
    assert traps.metric("tocsin_traps_v3_engines_discovered") == 1
    assert [t["item"] for t in tickets_of(traps, "roamer")] == ["real"]


def test_an_old_v3_trap_cannot_be_replayed_after_a_restart(traps):
    """USM refuses a trap older than the newest clock it saw of the sender's
    engine; that clock must survive a restart of the collector (the
    reviewer's experiment: after a restart an old captured linkUp resolved
    a current problem)."""
    def captured(trap, vbs, boots, time):
        return capture(trap, vbs, version="3", extra=V3_RIGHT + ["-Z", f"{boots},{time}"])

    old_up = captured(LINK_UP, link_varbinds(1, "wan0", oper=1), 1, 5)
    down = captured(LINK_DOWN, link_varbinds(1, "wan0"), 1, 900000)
    traps.send(down, source=V3_SWITCH)
    traps.wait_metric("tocsin_traps_matched_total", 1)
    traps.send(old_up, source=V3_SWITCH)
    traps.wait_metric('tocsin_traps_rejected_total{reason="not_in_time_window"}', 1)
    traps.stop()
    traps.start()
    traps.send(old_up, source=V3_SWITCH)
    traps.wait_metric('tocsin_traps_rejected_total{reason="not_in_time_window"}', 1)
    assert traps.metric("tocsin_traps_matched_total") == 0
    [t] = tickets_of(traps, "v3-switch")
    assert t["status"] == "new"
    # The device itself goes on: later traps, and those after its reboot.
    traps.send(captured(LINK_DOWN, link_varbinds(2, "wan1"), 1, 900100),
               source=V3_SWITCH)
    traps.send(captured(LINK_UP, link_varbinds(1, "wan0", oper=1), 2, 10),
               source=V3_SWITCH)
    traps.wait_metric("tocsin_traps_matched_total", 2)
    assert sorted((t["item"], t["status"]) for t in tickets_of(traps, "v3-switch")) \
        == [("wan0", "resolved"), ("wan1", "new")]


def test_v3_user_not_listed_for_the_device_is_unauthorised(traps):
    # netops is a valid user (bound to v3-switch's engine), not roamer's.
    snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(1), version="3",
             extra=V3_RIGHT, source=ROAMER)
    traps.wait_metric('tocsin_traps_rejected_total{reason="unauthorised"}', 1)
    assert tickets_of(traps, "roamer") == [] and tickets_of(traps, "v3-switch") == []


def test_v3_user_cannot_claim_another_devices_engine_id(traps):
    """The reviewer's case: any configured v3 user sending with -e <victim's
    engine id> landed on the victim.  Never discovered onto a configured
    device's engine id, roaming is unknown there; and no ticket."""
    for source in (UNCONFIGURED, V3_SWITCH):
        snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(1, "core0"), version="3",
                 extra=["-e", ENGINE] + ROAMING, source=source)
    traps.wait_metric('tocsin_traps_rejected_total{reason="unknown_user"}', 2)
    assert traps.metric("tocsin_traps_v3_engines_discovered") == 0
    assert traps.metric("tocsin_traps_matched_total") == 0
    assert tickets_of(traps, "v3-switch") == []


def test_a_networks_v3_user_works_for_its_device_with_an_engine_id(tmp_path):
    """Never discovered onto a configured engine id, the users a device may
    use, its own and its network's, are localised to it at start."""
    hosts = ("branch-sw:\n  snmp:\n    engine_id: 0x80000000cafe0001\n"
             "    addresses: [127.0.0.7]\n")
    srv = TrapServer(tmp_path / "srv", hosts=hosts,
                     traps=USERS + "networks:\n  - {cidr: 127.0.0.0/24, users: [roaming]}\n").start()
    try:
        ok = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, "ge1"), version="3",
                      extra=["-e", "0x80000000cafe0001"] + ROAMING, source="127.0.0.7")
        assert ok.returncode == 0, ok.stderr
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert [t["host"] for t in srv.tickets()] == ["branch-sw"]
        assert srv.metric("tocsin_traps_v3_engines_discovered") == 0
    finally:
        srv.stop()


def test_a_network_community_does_not_speak_for_a_device_of_another_network(tmp_path):
    """The reviewer's case: a community valid for one network, sent from
    there with the sysName of a device in another network, opened a ticket
    on that device."""
    hosts = ("victim-rtr:\n  snmp:\n    addresses: [198.51.100.9]\n"
             "attacker-sw:\n  snmp:\n    addresses: [127.0.0.1]\n")
    traps = ("networks:\n"
             "  - {cidr: 198.51.100.0/24, community: victim-secret}\n"
             "  - {cidr: 127.0.0.0/8, community: acme-public}\n")
    srv = TrapServer(tmp_path / "srv", traps=traps, hosts=hosts).start()
    try:
        vbs = varbinds((SYS_NAME0, "s", "victim-rtr")) + link_varbinds(1, "wan0")
        # From its own address: the attacker's switch, whatever it claims.
        snmptrap(srv.trap_port, LINK_DOWN, vbs, community="acme-public")
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert [t["host"] for t in srv.tickets()] == ["attacker-sw"]
        # From an address of no device: the claim is tried, and refused.
        snmptrap(srv.trap_port, LINK_DOWN, vbs, community="acme-public",
                 source=UNCONFIGURED)
        srv.wait_metric('tocsin_traps_rejected_total{reason="unauthorised"}', 1)
        assert [t["host"] for t in srv.tickets()] == ["attacker-sw"]
    finally:
        srv.stop()


def test_informs_are_acknowledged_only_when_accepted(traps):
    port = traps.trap_port
    ok = snmptrap(port, LINK_DOWN, link_varbinds(7, "Gi0/7"), community=COMMUNITY,
                  inform=True)
    assert ok.returncode == 0, ok.stderr  # snmpinform: 0 only when answered
    # Counted just after the answer went out: poll, the sender may be faster.
    traps.wait_metric("tocsin_traps_informs_acknowledged_total", 1)
    assert [t["item"] for t in tickets_of(traps, "core-sw1")] == ["Gi0/7"]

    bad = snmptrap(port, LINK_DOWN, link_varbinds(8), community="wrong",
                   inform=True, extra=["-t", "0.3", "-r", "0"])
    assert bad.returncode != 0
    assert "Timeout" in bad.stderr
    traps.wait_metric('tocsin_traps_rejected_total{reason="bad_community"}', 1)

    # SNMPv3: snmpinform discovers our engine id (a Report), then informs.
    v3 = snmptrap(port, LINK_DOWN, link_varbinds(9, "Gi0/9"), version="3",
                  inform=True, extra=V3_RIGHT[2:], source=V3_SWITCH)
    assert v3.returncode == 0, v3.stderr
    traps.wait_metric("tocsin_traps_informs_acknowledged_total", 2)
    assert traps.metric("tocsin_traps_informs_acknowledged_total") == 2
    assert traps.metric("tocsin_traps_discovery_total") >= 1
    # Discovery is the probe; nothing else of that exchange was refused.
    m = traps.metrics()
    assert m['tocsin_traps_rejected_total{reason="not_in_time_window"}'] == 0
    assert m['tocsin_traps_rejected_total{reason="unknown_engine_id"}'] == 0


def test_reports_of_refusals_are_counted_as_rejections_not_discovery(tmp_path):
    """A Report for a wrong engine id or a message outside the time window
    refuses something; only the engine-id probe is discovery."""
    ours = "0x80001f880474657374"
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     traps=USERS + f"engine_id: {ours}\n").start()
    try:
        # Our engine id, but boots and time far off: refused with a Report
        # (after which snmpinform resynchronises and sends again; whether
        # that gets through in time on a loaded machine is not the point).
        snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, "a"), version="3",
                 inform=True, source=V3_SWITCH,
                 extra=["-e", ours, "-Z", "1,1", "-t", "2", "-r", "1"] + V3_RIGHT[2:])
        srv.wait_metric('tocsin_traps_rejected_total{reason="not_in_time_window"}', 1)
        # An engine id that is not ours at all.
        snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(2, "b"), version="3",
                 inform=True, source=V3_SWITCH, extra=["-e", "0x8000000001020399",
                                                       "-t", "0.3", "-r", "0"]
                 + V3_RIGHT[2:])
        srv.wait_metric('tocsin_traps_rejected_total{reason="unknown_engine_id"}', 1)
        assert srv.metric("tocsin_traps_discovery_total") == 0
    finally:
        srv.stop()


def test_an_inform_is_answered_only_after_its_trap_is_stored(traps):
    """With the database held by another connection the writer cannot
    commit: no answer may come until it can (the reviewer's experiment)."""
    pkt = v2c(COMMUNITY, INFORM, 4711, LINK_DOWN,
              [(f"{IF_INDEX}.3", integer(3))])
    blocker = sqlite3.connect(traps.db, timeout=10, isolation_level=None)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.5)
            blocker.execute("BEGIN IMMEDIATE")
            s.sendto(pkt, ("127.0.0.1", traps.trap_port))
            try:
                s.recvfrom(65535)
                answered_early = True
            except socket.timeout:
                answered_early = False
            blocker.execute("ROLLBACK")
            assert not answered_early, "inform answered before its trap was stored"
            s.settimeout(10)
            s.recvfrom(65535)  # answered once the commit went through
        assert [t["item"] for t in tickets_of(traps, "core-sw1")] == ["3"]
    finally:
        blocker.close()


def test_an_inform_with_a_reused_request_id_after_a_restart_is_new(traps):
    """A device that restarts numbers its requests from the start again:
    the same request id with another sysUpTime.0 is a new inform, while a
    true retransmission (same sysUpTime.0) still adds nothing."""
    vbs = [(f"{IF_INDEX}.3", integer(3)), (f"{IF_NAME}.3", octets("ge3"))]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)

        def inform(trap, reqid, uptime):
            s.sendto(v2c(COMMUNITY, INFORM, reqid, trap, vbs, uptime),
                     ("127.0.0.1", traps.trap_port))
            return s.recvfrom(65535)[0]

        inform(LINK_DOWN, 77, 100)
        inform(LINK_DOWN, 77, 100)  # retransmitted: the same inform
        inform(LINK_UP, 78, 200)
        [t] = tickets_of(traps, "core-sw1")
        assert t["status"] == "resolved" and t["occurrence_count"] == 1, t
        # The device rebooted; request id 77 again, a new linkDown.
        inform(LINK_DOWN, 77, 50)
    traps.wait_metric("tocsin_traps_matched_total", 4)
    m = traps.metrics()
    assert m["tocsin_traps_duplicates_total"] == 1
    # Within the reopen window the resolved ticket comes back.
    assert [t["status"] for t in tickets_of(traps, "core-sw1")] == ["new"]
    assert traps.db_count("events") == 3


def test_malformed_and_oversized_datagrams_are_counted_and_dropped(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     traps=USERS + "max_packet: 1KiB\nmax_value: 64\n").start()
    try:
        srv.send(b"not snmp at all")
        srv.send(b"\x30\x82\xff\xff\x02\x01\x01")  # a BER length past the end
        srv.send(b"\x30" + os.urandom(1500))         # over max_packet
        long_value = varbinds(("1.3.6.1.4.1.9.9.1.0", "s", "x" * 100))
        snmptrap(srv.trap_port, LINK_DOWN, long_value, community=COMMUNITY)
        # A Get sent to the trap port is not a notification.
        subprocess.run(["snmpget", "-v2c", "-c", COMMUNITY, "-t", "0.2", "-r", "0",
                        f"127.0.0.1:{srv.trap_port}", "1.3.6.1.2.1.1.5.0"],
                       capture_output=True, env=dict(os.environ, MIBS=""))
        srv.wait_metric('tocsin_traps_rejected_total{reason="malformed"}', 2)
        srv.wait_metric('tocsin_traps_rejected_total{reason="oversized"}', 2)
        srv.wait_metric('tocsin_traps_rejected_total{reason="not_a_notification"}', 1)
        # The listener keeps running: a good trap still becomes a ticket.
        snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, "ok0"), community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert [t["item"] for t in srv.tickets()] == ["ok0"]
        m = srv.metrics()
        assert m['tocsin_traps_received_total{version="unknown"}'] == 3
        assert m['tocsin_traps_received_total{version="2c"}'] == 3
    finally:
        srv.stop()


def test_unknown_devices_are_counted_kept_for_review_and_listed(tmp_path):
    hosts = "router9:\n  snmp:\n    addresses: [192.0.2.9]\n    community: x-community\n"
    srv = TrapServer(tmp_path / "srv", hosts=hosts, traps="unknown_keep: 3\n").start()
    try:
        for i in range(5):
            vbs = varbinds((SYS_NAME0, "s", f"stranger-{i}")) + link_varbinds(i)
            snmptrap(srv.trap_port, LINK_DOWN, vbs, community="public")
        srv.wait_metric("tocsin_traps_unknown_device_total", 5)
        assert srv.metric("tocsin_traps_unknown_review_dropped_total") == 2
        assert srv.tickets() == []

        r = srv.get("/api/v1/traps/unknown?limit=2")
        assert r.status == 200, r.body
        doc = r.json()
        assert doc["kept"] == 3
        assert [t["sys_name"] for t in doc["traps"]] == ["stranger-4", "stranger-3"]
        t = doc["traps"][0]
        assert (t["source"], t["version"], t["trap"]) == ("127.0.0.1", "2c", "linkDown")
        assert t["varbinds"]["ifIndex.4"] == "4"
        assert t["varbinds"]["ifOperStatus.4"] == "down(2)"

        assert srv.get("/api/v1/traps/unknown?limit=0").status == 400
        assert srv.get("/api/v1/traps/unknown", token=None).status == 401

        cli = run_cli("--url", srv.url, "--token", TECH_TOKEN, "traps", "unknown")
        assert cli.returncode == 0, cli.stderr
        assert "stranger-4" in cli.stdout and "127.0.0.1" in cli.stdout
        assert "3 traps from unknown devices kept" in cli.stdout
    finally:
        srv.stop()


def test_ipv6_listener(tmp_path):
    hosts = f"v6-router:\n  snmp:\n    addresses: ['::1']\n    community: {COMMUNITY}\n"
    srv = TrapServer(tmp_path / "srv", hosts=hosts, listen="[::1]:0").start()
    try:
        proc = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, "v6lan"),
                        community=COMMUNITY, host="::1")
        assert proc.returncode == 0, proc.stderr
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert [(t["host"], t["item"]) for t in srv.tickets()] == [("v6-router", "v6lan")]
    finally:
        srv.stop()


def test_every_address_listens_on_ipv4_and_ipv6(tmp_path):
    hosts = (f"dual:\n  snmp:\n    addresses: [127.0.0.1, '::1']\n"
             f"    community: {COMMUNITY}\n")
    srv = TrapServer(tmp_path / "srv", hosts=hosts, listen=":0").start()
    try:
        for host, name in (("127.0.0.1", "v4"), ("::1", "v6")):
            proc = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, name),
                            community=COMMUNITY, host=host)
            assert proc.returncode == 0, proc.stderr
        srv.wait_metric("tocsin_traps_matched_total", 2)
        assert sorted(t["item"] for t in srv.tickets()) == ["v4", "v6"]
        # IPv4 peers of the dual-stack socket are shown as IPv4.
        sources = {srv.ticket(t["id"])["occurrences"][0]["context"]["source"]
                   for t in srv.tickets()}
        assert sources == {"127.0.0.1", "::1"}
    finally:
        srv.stop()


def test_every_datagram_is_accounted_for(traps):
    port = traps.trap_port
    snmptrap(port, LINK_DOWN, link_varbinds(1, "a"), community=COMMUNITY)
    snmptrap(port, "1.3.6.1.4.1.99999.0.1", community=COMMUNITY)  # unmatched
    snmptrap(port, LINK_DOWN, community="nope")                   # rejected
    traps.send(b"garbage")                                        # malformed
    traps.wait_metric('tocsin_traps_rejected_total{reason="malformed"}', 1)
    traps.wait_metric("tocsin_traps_unmatched_total", 1)
    m = traps.metrics()
    received = sum(v for k, v in m.items() if k.startswith("tocsin_traps_received_total"))
    rejected = sum(v for k, v in m.items() if k.startswith("tocsin_traps_rejected_total"))
    dropped = sum(v for k, v in m.items() if k.startswith("tocsin_traps_dropped_total"))
    assert received == 4
    assert received == (m["tocsin_traps_matched_total"] + m["tocsin_traps_unmatched_total"]
                        + rejected + dropped + m["tocsin_traps_unknown_device_total"]
                        + m["tocsin_traps_discovery_total"])
    # The fallback opened one ticket for the unmatched trap, per device and OID.
    [fb] = [t for t in traps.tickets() if t["check"] == "trap"]
    assert fb["item"] == "1.3.6.1.4.1.99999.0.1"
    assert "which no mapping describes" in fb["summary"]


def proc_status(pid):
    """/proc/PID/status as {"Uid": "65534 65534 65534 65534", ...}."""
    out = {}
    for line in open(f"/proc/{pid}/status").read().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def test_privileges_are_dropped_after_binding_a_port_below_1024(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("binding a port below 1024 needs root (CI runs as root)")
    import pwd
    import socket
    nobody = pwd.getpwnam("nobody")
    # A free privileged port, found by binding it.
    for port in range(900, 1000):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
    # pytest's directories are root's alone: nobody needs a way to its database.
    import shutil
    import tempfile
    from pathlib import Path
    base = Path(tempfile.mkdtemp(prefix="tocsin-privdrop-"))
    os.chmod(base, 0o755)
    srv = TrapServer(base / "srv", hosts=HOSTS, traps=USERS + "user: nobody\n",
                     listen=f"127.0.0.1:{port}")
    os.chown(srv.dir, nobody.pw_uid, nobody.pw_gid)
    srv.start()
    try:
        assert srv.trap_port == port
        status = proc_status(srv.proc.pid)
        assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
        assert status["Gid"].split() == [str(nobody.pw_gid)] * 4
        assert status["Groups"] == ""
        assert int(status["CapPrm"], 16) == 0 and int(status["CapEff"], 16) == 0
        assert int(status["CapAmb"], 16) == 0
        assert status["NoNewPrivs"] == "1"
        snmptrap(port, LINK_DOWN, link_varbinds(1, "low"), community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert "now running as nobody" in srv.log.read_text()
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_missing_privilege_drop_user_is_refused_at_start(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, traps=USERS + "user: no-such-user-x\n",
                     listen="127.0.0.1:999")
    proc = subprocess.run([binary("tocsin-server"), "--config", str(srv.config)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "traps.user: there is no user 'no-such-user-x'" in proc.stderr
    assert_no_sanitizer_errors(proc.stderr, "tocsin-server")


def test_sighup_keeps_the_listener_running_and_names_what_needs_a_restart(traps):
    """The sockets and what net-snmp was started with stay; the listener
    goes on with the rest of the reloaded configuration on its port."""
    import signal
    snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(1, "before"), community=COMMUNITY)
    traps.wait_metric("tocsin_traps_matched_total", 1)
    text = traps.config.read_text().replace("listen: '127.0.0.1:0'", "listen: '127.0.0.1:1'")
    text = text.replace("traps:\n", "traps:\n  max_packet: 8KiB\n", 1)
    traps.config.write_text(text)
    traps.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded configuration applied" in traps.log.read_text(),
             what="the listener to apply the reload")
    log = traps.log.read_text()
    assert "SIGHUP: traps.listen changed; restart the server to apply it" in log
    assert "SIGHUP: traps.receive_buffer or max_packet changed; restart the server to apply it" in log
    assert "traps.users changed" not in log and "traps.engine_id changed" not in log
    snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(2, "after"), community=COMMUNITY)
    traps.wait_metric("tocsin_traps_matched_total", 2)
    assert sorted(t["item"] for t in tickets_of(traps, "core-sw1")) == ["after", "before"]
    # Unchanged v3 users keep their keys across the reload.
    ok = snmptrap(traps.trap_port, LINK_DOWN, link_varbinds(4, "xe-0/0/4"), version="3",
                  extra=V3_RIGHT, source=V3_SWITCH)
    assert ok.returncode == 0, ok.stderr
    traps.wait_metric("tocsin_traps_matched_total", 3)
    assert [t["item"] for t in tickets_of(traps, "v3-switch")] == ["xe-0/0/4"]


def test_a_traps_section_new_on_sighup_waits_for_a_restart(tmp_path):
    """net-snmp's initialisation sets the environment and the locale, which
    nothing may do beside running threads: a traps: section that was not
    there at start is not acted on by a reload, and the log says so."""
    import signal
    from conftest import Server
    srv = Server(tmp_path / "srv").start()
    try:
        srv.config.write_text(srv.config.read_text() +
                              "traps:\n  listen: '127.0.0.1:0'\n"
                              f"  mappings_dir: {tmp_path / 'none'}\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in srv.log_text(),
                 what="the reload")
        assert "the traps: section is new" in srv.log_text()
        assert "--check-config" in srv.log_text()
        assert srv.get("/healthz").status == 200
    finally:
        srv.stop()


def test_without_root_the_bind_capability_is_given_up_after_binding(tmp_path):
    """As under systemd: User=tocsin, AmbientCapabilities=CAP_NET_BIND_SERVICE."""
    if os.geteuid() != 0:
        pytest.skip("setting up a user with a capability needs root")
    import pwd
    import shutil
    import socket
    import tempfile
    from pathlib import Path
    from conftest import http
    nobody = pwd.getpwnam("nobody")
    for port in range(800, 900):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
    base = Path(tempfile.mkdtemp(prefix="tocsin-caps-"))
    os.chmod(base, 0o755)
    srv = TrapServer(base / "srv", hosts=HOSTS, traps=USERS, listen=f"127.0.0.1:{port}")
    os.chown(srv.dir, nobody.pw_uid, nobody.pw_gid)
    log = open(srv.log, "ab")
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
         "--clear-groups", "--inh-caps=+net_bind_service",
         "--ambient-caps=+net_bind_service", binary("tocsin-server"),
         "--config", str(srv.config), "--port-file", str(srv.port_file),
         "--trap-port-file", str(srv.trap_port_file)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: srv.port_file.exists() and srv.port_file.read_text().strip()
                 or proc.poll() is not None, what="the server's port file")
        assert proc.poll() is None, srv.log.read_text()
        assert int(srv.trap_port_file.read_text()) == port
        caps = proc_status(proc.pid)
        assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0
        assert int(caps["CapAmb"], 16) == 0 and int(caps["CapInh"], 16) == 0
        assert caps["NoNewPrivs"] == "1"
        srv.port = int(srv.port_file.read_text())
        srv.trap_port = port
        snmptrap(port, LINK_DOWN, link_varbinds(1, "capless"), community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert http("GET", srv.url + "/healthz").status == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, srv.log.read_text()
        log.close()
        assert_no_sanitizer_errors(srv.log.read_text(), "tocsin-server")
        shutil.rmtree(base, ignore_errors=True)
