"""An MSP's inventory: thousands of routers with snmp: keys.  The real
tocsin-server starts and reloads with them, and a trap of the last one
configured is that router's, found by each of its keys (no timing is
asserted: bench/trap_scale.sh measures)."""
import signal

from conftest import wait_for
from trap_helpers import LINK_DOWN, SYS_NAME0, TrapServer, link_varbinds, snmptrap, varbinds

DEVICES = 5000
COMMUNITY = "scale-community"
USERS = """\
users:
  - {name: netops, auth: sha256, auth_key: auth-pass-123, priv: aes, priv_key: priv-pass-123}
  - {name: noc, auth: sha, auth_key: noc-pass-old, priv: aes, priv_key: noc-priv-123}
"""
NETOPS = ["-u", "netops", "-l", "authPriv", "-a", "SHA-256", "-A", "auth-pass-123",
          "-x", "AES", "-X", "priv-pass-123"]


def noc(key):
    return ["-u", "noc", "-l", "authPriv", "-a", "SHA", "-A", key, "-x", "AES",
            "-X", "noc-priv-123"]
# The last router's own address; one of the loopback no router has.
LAST_ADDRESS, UNCONFIGURED = "127.0.0.5", "127.0.0.2"


def engine(i):
    return f"0x8000000903{i:012x}"


def router(i, address=None):
    address = address or f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
    return (f"r{i}:\n  snmp:\n    addresses: [{address}]\n"
            f"    engine_id: {engine(i)}\n    users: [netops, noc]\n"
            f"    community: {COMMUNITY}\n    sys_name: Router-{i}.Example\n")


def hosts():
    return "".join(router(i, LAST_ADDRESS if i == DEVICES - 1 else None)
                   for i in range(DEVICES))


def hosts_of(srv):
    return sorted((t["host"], t["item"]) for t in srv.tickets())


def test_thousands_of_devices_start_reload_and_a_trap_of_the_last_is_its_own(tmp_path):
    srv = TrapServer(tmp_path / "srv", traps=USERS, hosts=hosts()).start()
    last = f"r{DEVICES - 1}"
    try:
        # By its engine id, from an address no router has: netops was
        # localised to every router's engine at start.
        ok = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(1, "by-engine"),
                      version="3", extra=["-e", engine(DEVICES - 1)] + NETOPS,
                      source=UNCONFIGURED)
        assert ok.returncode == 0, ok.stderr
        # By its address.
        snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(2, "by-address"),
                 community=COMMUNITY, source=LAST_ADDRESS)
        # By sysName.0, in another case; and one of the router before it.
        vbs = link_varbinds(3, "by-name") + varbinds(
            (SYS_NAME0, "s", f"ROUTER-{DEVICES - 1}.example"))
        snmptrap(srv.trap_port, LINK_DOWN, vbs, community=COMMUNITY,
                 source=UNCONFIGURED)
        vbs = link_varbinds(4, "by-name") + varbinds(
            (SYS_NAME0, "s", f"router-{DEVICES - 2}.EXAMPLE"))
        snmptrap(srv.trap_port, LINK_DOWN, vbs, community=COMMUNITY,
                 source=UNCONFIGURED)
        srv.wait_metric("tocsin_traps_matched_total", 4)
        assert hosts_of(srv) == sorted([(last, "by-engine"), (last, "by-address"),
                                        (last, "by-name"), (f"r{DEVICES - 2}", "by-name")])

        # A reload with one router more, and noc's key changed (every
        # router lists noc): the new router gets both users localised to
        # its engine, noc is localised again everywhere, netops is kept.
        srv.config.write_text(srv.config.read_text().replace("noc-pass-old", "noc-pass-new")
                              + "  " + router(DEVICES).replace("\n", "\n  ").rstrip() + "\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: f"trap listener: reloaded configuration applied: {DEVICES + 1} devices"
                 in srv.log_text(), timeout=60, what="the reload to be applied")
        for i, item in ((DEVICES, "new-router"), (DEVICES - 1, "after-reload")):
            ok = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(5, item),
                          version="3", extra=["-e", engine(i)] + NETOPS,
                          source=UNCONFIGURED)
            assert ok.returncode == 0, ok.stderr
        srv.wait_metric("tocsin_traps_matched_total", 6)
        assert (f"r{DEVICES}", "new-router") in hosts_of(srv)
        assert (last, "after-reload") in hosts_of(srv)
        # noc's old key no longer authenticates, at the first router or
        # the last; the new one does, at the new router too.
        for i in (0, DEVICES - 1):
            snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(6, "old-key"), version="3",
                     extra=["-e", engine(i)] + noc("noc-pass-old"), source=UNCONFIGURED)
        srv.wait_metric('tocsin_traps_rejected_total{reason="auth_failure"}', 2)
        for i in (0, DEVICES - 1, DEVICES):
            ok = snmptrap(srv.trap_port, LINK_DOWN, link_varbinds(7, "new-key"), version="3",
                          extra=["-e", engine(i)] + noc("noc-pass-new"), source=UNCONFIGURED)
            assert ok.returncode == 0, ok.stderr
        srv.wait_metric("tocsin_traps_matched_total", 9)
        assert {h for h, item in hosts_of(srv) if item == "new-key"} == \
            {"r0", last, f"r{DEVICES}"}
        assert "old-key" not in {item for _, item in hosts_of(srv)}
        m = srv.metrics()
        assert m.get('tocsin_traps_rejected_total{reason="unknown_user"}', 0) == 0
        assert m.get("tocsin_traps_v3_engines_discovered", 0) == 0
    finally:
        srv.stop()
