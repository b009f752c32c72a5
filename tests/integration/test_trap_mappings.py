"""Trap mappings in YAML files, and configuration errors that say where."""
import subprocess

from conftest import assert_no_sanitizer_errors, binary
from trap_helpers import LINK_DOWN, LINK_UP, TrapServer, link_varbinds, snmptrap, varbinds

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
