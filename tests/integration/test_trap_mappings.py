"""Trap mappings in YAML files, and configuration errors that say where."""
import signal
import socket
import subprocess
import threading
import time

from conftest import assert_no_sanitizer_errors, binary, wait_for
from trap_helpers import (LINK_DOWN, LINK_UP, TrapServer, capture, link_varbinds,
                          snmptrap, varbinds)

COMMUNITY = "map-community"
HOSTS = f"ups1:\n  snmp:\n    addresses: [127.0.0.1]\n    community: {COMMUNITY}\n"

# An APC-style UPS: an enterprise trap, its clear, and a varbind alias for
# an object whose MIB Debian does not ship.
UPS = """\
names:
  upsAlarmDescr: 1.3.6.1.4.1.318.2.3.1
  upsBatteryPack: 1.3.6.1.4.1.318.2.3.2
mappings:
  - name: ups-on-battery
    trap: 1.3.6.1.4.1.318.0.5
    match:
      upsAlarmDescr: {regex: "^(UPS|ups) on battery"}
    check: power
    item: "battery {upsBatteryPack|upsBatteryPack.index}"
    state: critical
    summary: "{device}: {upsAlarmDescr} (pack {upsBatteryPack}, from {source})"
  - name: ups-on-line
    trap: 1.3.6.1.4.1.318.0.9
    clears: ups-on-battery
    summary: "{device} is back on line power"
  - name: core-uplink-down
    trap: linkDown
    match:
      ifAlias: {prefix: "uplink"}
    check: uplink
    item: "{ifName}"
    state: critical
    summary: "uplink {ifName} ({ifAlias}) on {device} is down"
  - name: core-uplink-up
    trap: linkUp
    clears: core-uplink-down
"""


def test_vendor_mappings_match_render_and_clear(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     mappings={"50-apc.yaml": UPS}).start()
    try:
        port = srv.trap_port
        on_battery = varbinds(("1.3.6.1.4.1.318.2.3.1.0", "s", "UPS on battery power"),
                              ("1.3.6.1.4.1.318.2.3.2.0", "i", 2))
        assert snmptrap(port, "1.3.6.1.4.1.318.0.5", on_battery,
                        community=COMMUNITY).returncode == 0
        # The same trap without the matching text falls through to the fallback.
        other = varbinds(("1.3.6.1.4.1.318.2.3.1.0", "s", "self test passed"))
        snmptrap(port, "1.3.6.1.4.1.318.0.5", other, community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        srv.wait_metric("tocsin_traps_unmatched_total", 1)
        by_check = {t["check"]: t for t in srv.tickets("open")}
        power = by_check["power"]
        assert power["item"] == "battery 2"
        assert power["summary"] == \
            "ups1: UPS on battery power (pack 2, from 127.0.0.1)"
        assert by_check["trap"]["item"] == "1.3.6.1.4.1.318.0.5"

        snmptrap(port, "1.3.6.1.4.1.318.0.9",
                 varbinds(("1.3.6.1.4.1.318.2.3.2.0", "i", 2)), community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 2)
        [resolved] = [t for t in srv.tickets("resolved") if t["id"] == power["id"]]
        assert resolved["status"] == "resolved"

        # A file's mapping goes before the built-in link-down.
        up = link_varbinds(1, "xe-1") + varbinds(("1.3.6.1.2.1.31.1.1.1.18.1", "s",
                                                    "uplink to core"))
        snmptrap(port, LINK_DOWN, up, community=COMMUNITY)
        snmptrap(port, LINK_DOWN, link_varbinds(2, "ge-2"), community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 4)
        checks = sorted((t["check"], t["item"]) for t in srv.tickets("open")
                        if t["check"] in ("uplink", "link"))
        assert checks == [("link", "ge-2"), ("uplink", "xe-1")]
        # The file's clear comes first for every linkUp, and the built-in
        # link-up still resolves the port that is no uplink.
        snmptrap(port, LINK_UP, link_varbinds(2, "ge-2", oper=1), community=COMMUNITY)
        snmptrap(port, LINK_UP, up, community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 6)
        assert [t for t in srv.tickets("open") if t["check"] in ("uplink", "link")] == []
    finally:
        srv.stop()


def check_config(srv):
    proc = subprocess.run([binary("tocsin-server"), "--config", str(srv.config),
                           "--check-config"], capture_output=True, text=True,
                          timeout=30)
    assert_no_sanitizer_errors(proc.stderr, "tocsin-server")
    return proc


BAD_MAPPINGS = """\
mappings:
  - name: broken
    trap: linkDwn
    check: Link Status
    item: "{ifNmae}"
    state: down
    summary: "{ifName on {device}"
    extra: 1
  - name: bad-regex
    trap: linkUp
    match:
      ifAlias: {regex: "(unclosed"}
    clears: nothing-like-this
"""


def test_mapping_errors_name_file_line_and_column(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     mappings={"10-bad.yaml": BAD_MAPPINGS})
    proc = check_config(srv)
    assert proc.returncode == 2
    path = srv.dir / "traps" / "10-bad.yaml"
    err = proc.stderr
    assert f"{path}:3:11: mappings[0].trap: unknown trap 'linkDwn'" in err
    assert f"{path}:4:12: mappings[0].check: 'Link Status' is not a check name" in err
    assert f"{path}:5:11: mappings[0].item: unknown name 'ifNmae' at character 2" in err
    assert f"{path}:6:12: mappings[0].state: 'down' is not one of ok, warning, critical, unknown" in err
    assert f"{path}:7:14: mappings[0].summary: unclosed '{{' at character 1" in err
    assert f"{path}:8:5: mappings[0].extra: unknown key 'extra'" in err
    assert f"{path}:12:24: mappings[1].match.ifAlias.regex: bad regular expression '(unclosed'" in err
    # A bad mapping is refused whole: its clears is not looked at.
    assert "nothing-like-this" not in err


def test_clears_must_name_a_mapping(tmp_path):
    text = "mappings:\n  - name: orphan-clear\n    trap: linkUp\n    clears: nothing-like-this\n"
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, mappings={"20-x.yaml": text})
    proc = check_config(srv)
    assert proc.returncode == 2
    path = srv.dir / "traps" / "20-x.yaml"
    assert f"{path}:4:13: mappings[0].clears: no mapping 'nothing-like-this' to clear" \
        in proc.stderr


def test_mapping_yaml_syntax_error_is_located(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     mappings={"30-syntax.yaml": "mappings:\n  - name: [x\n"})
    proc = check_config(srv)
    assert proc.returncode == 2
    assert f"{srv.dir / 'traps' / '30-syntax.yaml'}:3:1: YAML syntax error" in proc.stderr


def test_builtins_can_be_switched_off_and_the_fallback_too(tmp_path):
    text = ("mappings:\n  - name: fallback\n    enabled: false\n"
            "  - name: cold-start\n    enabled: false\n")
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, mappings={"00-off.yaml": text}).start()
    try:
        snmptrap(srv.trap_port, "1.3.6.1.6.3.1.1.5.1", community=COMMUNITY)  # coldStart
        snmptrap(srv.trap_port, "1.3.6.1.4.1.9.9.1", community=COMMUNITY)
        srv.wait_metric("tocsin_traps_unmatched_total", 2)
        assert srv.tickets() == []
    finally:
        srv.stop()


TRAPS_BAD = """\
listen: "not-a-port"
engine_id: "0x12"
max_packet: 100
users:
  - name: shorty
    auth: sha256
    auth_key: short
    priv: aes
  - name: no-cipher
    auth: sha999
    auth_key: long-enough-key
    priv_key: secret-but-no-priv
networks:
  - cidr: 10.0.0.0/33
    community: x
  - cidr: 10.1.0.0/16
    users: [nobody-known]
rate_limit:
  source: -5
  device_burst: lots
fallback_max: 0
"""


def test_traps_configuration_errors_say_where(tmp_path):
    hosts = ("r1:\n  snmp:\n    addresses: [10.0.0.1, 10.0.0.1.5]\n"
             "r2:\n  snmp:\n    addresses: [10.0.0.1]\n    engine_id: zz\n"
             "r3:\n  snmp:\n    community: only-this\n")
    srv = TrapServer(tmp_path / "srv", hosts=hosts, traps=TRAPS_BAD)
    # The helper's own listen: goes; this test sets its own.
    srv.config.write_text(srv.config.read_text().replace("  listen: '127.0.0.1:0'\n", "", 1))
    proc = check_config(srv)
    assert proc.returncode == 2
    err = proc.stderr
    cfg = srv.config
    text = cfg.read_text().splitlines()
    line = {k: next(i + 1 for i, l in enumerate(text) if k in l) for k in
            ("not-a-port", '"0x12"', "max_packet", "auth_key: short", "sha999",
             "secret-but-no-priv", "10.0.0.0/33", "nobody-known", "10.0.0.1.5",
             "engine_id: zz", "only-this", "source: -5", "device_burst: lots",
             "fallback_max: 0")}
    assert f"{cfg}:{line['not-a-port']}:11: traps.listen: 'not-a-port' is not host:port" in err
    engine_line = line['"0x12"']
    assert f"{cfg}:{engine_line}:14: traps.engine_id: '0x12' is not an engine id" in err
    assert f"traps.max_packet: max_packet must be between 484" in err
    assert f"{cfg}:{line['auth_key: short']}:" in err and \
        "auth_key: a pass phrase of at least 8 characters is required" in err
    assert "priv_key: a pass phrase of at least 8 characters is required with priv aes" in err
    assert f"{cfg}:{line['sha999']}:" in err and "traps.users[1].auth: " in err
    assert "priv_key is set but priv is none" in err
    assert "cidr: expected a network such as 192.0.2.0/24" in err
    assert "no user 'nobody-known' under traps.users" in err
    assert "'10.0.0.1.5' is not an IPv4 or IPv6 address" in err
    assert "address 10.0.0.1 is already r1's" in err
    assert "'zz' is not an engine id" in err
    assert "a device needs addresses, engine_id or sys_name to be recognised by" in err
    assert f"{cfg}:{line['source: -5']}:13: traps.rate_limit.source: -5 is out of range 0..10000000" in err
    assert f"{cfg}:{line['device_burst: lots']}:19: traps.rate_limit.device_burst: expected an integer, got 'lots'" in err
    assert f"{cfg}:{line['fallback_max: 0']}:17: traps.fallback_max: 0 is out of range 1..100000" in err


TEST_MIB = """\
TOCSIN-TEST-MIB DEFINITIONS ::= BEGIN
tocsinTest OBJECT IDENTIFIER ::= { iso 3 6 1 4 1 99999 }
tocsinObjects OBJECT IDENTIFIER ::= { tocsinTest 1 }
tocsinNotifications OBJECT IDENTIFIER ::= { tocsinTest 0 }
tocsinAlarmText OBJECT-TYPE
    SYNTAX      OCTET STRING
    MAX-ACCESS  accessible-for-notify
    STATUS      current
    DESCRIPTION "What went wrong."
    ::= { tocsinObjects 1 }
tocsinAlarmLevel OBJECT-TYPE
    SYNTAX      INTEGER { minor(1), major(2), critical(3) }
    MAX-ACCESS  accessible-for-notify
    STATUS      current
    DESCRIPTION "How bad."
    ::= { tocsinObjects 2 }
tocsinAlarm NOTIFICATION-TYPE
    OBJECTS     { tocsinAlarmText, tocsinAlarmLevel }
    STATUS      current
    DESCRIPTION "An alarm."
    ::= { tocsinNotifications 1 }
END
"""

MIB_MAPPING = """\
mappings:
  - name: test-alarm
    trap: TOCSIN-TEST-MIB::tocsinAlarm
    match:
      tocsinAlarmLevel: critical
    check: alarm
    item: "{tocsinAlarmText}"
    state: critical
    summary: "{tocsinAlarmText} ({tocsinAlarmLevel}, {trap})"
"""


def test_names_from_mib_files_in_mappings_and_contexts(tmp_path):
    mibs = tmp_path / "mibs"
    mibs.mkdir()
    (mibs / "TOCSIN-TEST-MIB.txt").write_text(TEST_MIB)
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, traps=f"mib_dirs: [{mibs}]\n",
                     mappings={"60-test.yaml": MIB_MAPPING}).start()
    try:
        vbs = varbinds(("1.3.6.1.4.1.99999.1.1.0", "s", "disk on fire"),
                       ("1.3.6.1.4.1.99999.1.2.0", "i", 3))
        snmptrap(srv.trap_port, "1.3.6.1.4.1.99999.0.1", vbs, community=COMMUNITY)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        [t] = srv.tickets()
        assert (t["check"], t["item"]) == ("alarm", "disk on fire")
        assert t["summary"] == "disk on fire (critical, tocsinAlarm)"
        ctx = srv.ticket(t["id"])["occurrences"][0]["context"]
        assert ctx["trap"] == "tocsinAlarm"
        assert ctx["varbinds"] == {"tocsinAlarmText.0": "disk on fire",
                                   "tocsinAlarmLevel.0": "critical(3)"}
    finally:
        srv.stop()


def test_unknown_mib_name_in_a_mapping_is_an_error(tmp_path):
    text = MIB_MAPPING.replace("TOCSIN-TEST-MIB::tocsinAlarm", "TOCSIN-TEST-MIB::noSuchThing")
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, traps="mib_dirs: []\n",
                     mappings={"60-test.yaml": text})
    proc = check_config(srv)
    assert proc.returncode == 2
    assert "60-test.yaml:3:11: mappings[0].trap: unknown trap 'TOCSIN-TEST-MIB::noSuchThing'" \
        in proc.stderr


# --- SIGHUP: the running listener takes up new mappings and credentials ---

FAN_TRAP = "1.3.6.1.4.1.99999.0.7"
FAN = """\
names:
  fanIndex: 1.3.6.1.4.1.99999.1.7
mappings:
  - name: fan-failed
    trap: 1.3.6.1.4.1.99999.0.7
    check: fan
    item: "fan {fanIndex}"
    state: critical
    summary: "fan {fanIndex} of {device} failed"
"""
APPLIED = "trap listener: reloaded configuration applied"


def sighup(srv, count):
    """SIGHUP, then wait until the listener thread took the reload up."""
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count("SIGHUP: configuration reloaded") >= count,
             what="the reload")
    wait_for(lambda: srv.log_text().count(APPLIED) >= count,
             what="the listener to apply the reload")


def fan_trap(srv, index, community=COMMUNITY):
    proc = snmptrap(srv.trap_port, FAN_TRAP,
                    varbinds((f"1.3.6.1.4.1.99999.1.7.{index}", "i", index)),
                    community=community)
    assert proc.returncode == 0, proc.stderr


def test_sighup_applies_an_edited_mapping_file_to_the_running_listener(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS).start()
    try:
        sockets = srv.udp_sockets()
        assert len(sockets) == 1, sockets
        fan_trap(srv, 3)
        srv.wait_metric("tocsin_traps_unmatched_total", 1)
        [t] = srv.tickets("open")
        assert (t["check"], t["item"]) == ("trap", FAN_TRAP)  # the fallback's

        (srv.dir / "traps" / "40-fan.yaml").write_text(FAN)
        sighup(srv, 1)
        fan_trap(srv, 3)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        fan = [t for t in srv.tickets("open") if t["check"] == "fan"]
        assert [(t["item"], t["summary"]) for t in fan] == \
            [("fan 3", "fan 3 of ups1 failed")]
        log = srv.log_text()
        assert "1 devices, 5 mappings besides the fallback" in log  # the start
        assert f"{APPLIED}: 1 devices, 0 users, 6 mappings besides the fallback" in log
        assert "apply after a restart" not in log
        # The same socket all along: the listener was never closed and
        # bound again (which the port file, written once, cannot tell).
        assert srv.udp_sockets() == sockets
    finally:
        srv.stop()


def test_a_broken_mapping_file_on_sighup_keeps_the_running_mappings(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     mappings={"40-fan.yaml": FAN}).start()
    try:
        path = srv.dir / "traps" / "40-fan.yaml"
        # Running: the mappings of a first reload, not those of the start.
        stopped = FAN.replace("failed", "stopped")
        path.write_text(stopped)
        sighup(srv, 1)
        path.write_text(stopped.replace("check: fan", "check: Fan Tray"))
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running configuration" in srv.log_text(),
                 what="the refused reload")
        log = srv.log_text()
        # Where, as --check-config says it.
        where = f"{path}:6:12: mappings[0].check: 'Fan Tray' is not a check name"
        assert f"SIGHUP: {where}" in log
        assert log.count(APPLIED) == 1
        proc = check_config(srv)
        assert proc.returncode == 2 and where in proc.stderr
        fan_trap(srv, 2)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        assert [(t["check"], t["item"], t["summary"]) for t in srv.tickets("open")] == \
            [("fan", "fan 2", "fan 2 of ups1 stopped")]
        assert srv.metric("tocsin_traps_unmatched_total") == 0
    finally:
        srv.stop()


def test_sighup_applies_a_new_community_and_rate_limit(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS, mappings={"40-fan.yaml": FAN},
                     traps="rate_limit: {device: 1000, device_burst: 1000}\n").start()
    try:
        fan_trap(srv, 1)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        text = srv.config.read_text()
        text = text.replace(f"community: {COMMUNITY}", "community: rotated-community")
        text = text.replace("{device: 1000, device_burst: 1000}",
                            "{device: 1, device_burst: 1}")
        srv.config.write_text(text)
        sighup(srv, 1)
        fan_trap(srv, 2)  # the old community
        srv.wait_metric('tocsin_traps_rejected_total{reason="bad_community"}', 1)
        fan_trap(srv, 3, community="rotated-community")
        srv.wait_metric("tocsin_traps_matched_total", 2)
        # The device's bucket is down to the new burst of one: spent.
        fan_trap(srv, 4, community="rotated-community")
        srv.wait_metric('tocsin_traps_rejected_total{reason="rate_limited"}', 1)
        assert sorted(t["item"] for t in srv.tickets("open")) == ["fan 1", "fan 3"]
    finally:
        srv.stop()


ENGINE = "0x8000000001020304"
V3_HOSTS = f"v3dev:\n  snmp:\n    engine_id: {ENGINE}\n    addresses: [127.0.0.4]\n"
V3_USER = """\
users:
  - name: netops
    auth: sha256
    auth_key: {key}
"""


def test_sighup_adds_and_rekeys_a_v3_user(tmp_path):
    srv = TrapServer(tmp_path / "srv", hosts=V3_HOSTS,
                     mappings={"40-fan.yaml": FAN}).start()

    def v3_trap(key, index):
        proc = snmptrap(srv.trap_port, FAN_TRAP,
                        varbinds((f"1.3.6.1.4.1.99999.1.7.{index}", "i", index)),
                        version="3", source="127.0.0.4",
                        extra=["-e", ENGINE, "-u", "netops", "-l", "authNoPriv",
                               "-a", "SHA-256", "-A", key])
        assert proc.returncode == 0, proc.stderr

    def reload_with(key, count):
        text = srv.config.read_text()
        if "users:" in text:
            text = text.replace(text[text.index("  users:"):text.index("hosts:")], "")
        text = text.replace("hosts:", "".join("  " + l + "\n" for l in
                            V3_USER.format(key=key).splitlines()) + "hosts:", 1)
        if "users: [netops]" not in text:
            text = text.replace("      addresses: [127.0.0.4]\n",
                                "      addresses: [127.0.0.4]\n      users: [netops]\n")
        srv.config.write_text(text)
        sighup(srv, count)

    try:
        v3_trap("auth-pass-123", 1)
        srv.wait_metric('tocsin_traps_rejected_total{reason="unknown_user"}', 1)
        reload_with("auth-pass-123", 1)
        v3_trap("auth-pass-123", 2)
        srv.wait_metric("tocsin_traps_matched_total", 1)
        # A new pass phrase: the old one no longer authenticates.
        reload_with("rotated-pass-456", 2)
        v3_trap("auth-pass-123", 3)
        srv.wait_metric('tocsin_traps_rejected_total{reason="auth_failure"}', 1)
        v3_trap("rotated-pass-456", 4)
        srv.wait_metric("tocsin_traps_matched_total", 2)
        assert sorted(t["item"] for t in srv.tickets("open")) == ["fan 2", "fan 4"]
    finally:
        srv.stop()


LINK_UPLINK = """\
mappings:
  - name: uplink-down
    trap: linkDown
    check: uplink
    item: "{ifName}"
    state: critical
    summary: "uplink {ifName} of {device} is down"
"""


def test_traps_sent_during_sighups_are_all_counted(tmp_path):
    """A steady stream of traps while the mapping changes back and forth:
    every datagram is read and stored once, by the old or the new mappings."""
    srv = TrapServer(tmp_path / "srv", hosts=HOSTS,
                     traps="rate_limit: {source: 0, device: 0}\n").start()
    try:
        packet = capture(LINK_DOWN, link_varbinds(1, "xe-1"), community=COMMUNITY)
        stop = threading.Event()
        sent = [0]

        def stream():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                while not stop.is_set() or sent[0] < 3000:
                    for _ in range(10):
                        s.sendto(packet, ("127.0.0.1", srv.trap_port))
                        sent[0] += 1
                    time.sleep(0.002)

        sender = threading.Thread(target=stream)
        sender.start()
        try:
            mapfile = srv.dir / "traps" / "40-uplink.yaml"
            for i in range(1, 7):
                # Traps before, during and after each reload.
                before = sent[0]
                wait_for(lambda: sent[0] >= before + 300, what="more traps sent")
                if i % 2:
                    mapfile.write_text(LINK_UPLINK)
                else:
                    mapfile.unlink()
                sighup(srv, i)
        finally:
            stop.set()
            sender.join()
        n = sent[0]
        srv.wait_metric('tocsin_traps_received_total{version="2c"}', n)
        srv.wait_metric("tocsin_traps_matched_total", n)
        m = srv.metrics()
        assert m["tocsin_traps_udp_receive_errors_total"] == 0
        assert m['tocsin_traps_received_total{version="2c"}'] == n
        assert m["tocsin_traps_matched_total"] == n
        assert m["tocsin_traps_unmatched_total"] == 0
        assert sum(v for k, v in m.items()
                   if k.startswith("tocsin_traps_dropped_total")) == 0
        assert sum(v for k, v in m.items()
                   if k.startswith("tocsin_traps_rejected_total")) == 0
        # Both mappings were used: the stream spanned the reloads.
        checks = {t["check"] for t in srv.tickets()}
        assert {"uplink", "link"} <= checks, checks
        assert f"apply after a restart" not in srv.log_text()
    finally:
        srv.stop()
