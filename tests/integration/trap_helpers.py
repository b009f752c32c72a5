"""Helpers for the SNMP trap tests: a real server with a trap listener, the
real net-snmp clients (snmptrap, snmpinform), and packets they encoded."""
import os
import re
import socket
import subprocess
import textwrap
from pathlib import Path

from conftest import Server, wait_for

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
SYS_NAME0 = "1.3.6.1.2.1.1.5.0"

METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


class TrapServer(Server):
    """tocsin-server with a traps: section, its trap port from --trap-port-file."""

    def __init__(self, workdir, traps="", hosts="", mappings=None,
                 listen="127.0.0.1:0"):
        workdir = Path(workdir)
        mapdir = workdir / "traps"
        mapdir.mkdir(parents=True, exist_ok=True)
        for name, text in (mappings or {}).items():
            (mapdir / name).write_text(textwrap.dedent(text))
        extra = f"traps:\n  listen: '{listen}'\n"
        extra += f"  mappings_dir: {mapdir}\n"
        extra += textwrap.indent(textwrap.dedent(traps), "  ")
        if hosts:
            extra += "hosts:\n" + textwrap.indent(textwrap.dedent(hosts), "  ")
        self.trap_port_file = workdir / "trap-port"
        super().__init__(workdir, extra=extra,
                         extra_args=["--trap-port-file", str(workdir / "trap-port")])
        self.trap_port = None

    def start(self):
        super().start()
        self.trap_port = int(self.trap_port_file.read_text())
        return self

    def metrics(self):
        """/metrics as {"name{labels}": value}."""
        r = self.get("/metrics")
        assert r.status == 200, r.body
        out = {}
        for line in r.body.decode().splitlines():
            m = METRIC.match(line)
            if m:
                out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def metric(self, name):
        return self.metrics().get(name, 0)

    def wait_metric(self, name, value, timeout=20):
        wait_for(lambda: self.metric(name) >= value, timeout=timeout,
                 what=f"{name} to reach {value} (now {self.metric(name)})")
        return self.metric(name)

    def udp_sockets(self):
        """The inodes of this server's UDP sockets bound to its trap port."""
        mine = set()
        fds = Path(f"/proc/{self.proc.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                mine.add(int(target[len("socket:["):-1]))
        bound = set()
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port == self.trap_port and int(fields[9]) in mine:
                    bound.add(int(fields[9]))
        return bound

    def send(self, data, host="127.0.0.1", source=None):
        """One datagram, from source (an address of the loopback) if given."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            if source:
                s.bind((source, 0))
            s.sendto(data, (host, self.trap_port))


def varbinds(*triples):
    out = []
    for oid, typ, value in triples:
        out += [oid, typ, str(value)]
    return out


def snmptrap(port, trap_oid, vbs=(), version="2c", community="public",
             host="127.0.0.1", extra=(), inform=False, v1=None, timeout=10,
             source=None):
    """Run the real snmptrap (or snmpinform); returns the CompletedProcess.
    source: the address it sends from (127.0.0.0/8 is all loopback), so
    that a test can be a device the collector knows by address, or not."""
    cmd = ["snmpinform" if inform else "snmptrap", f"-v{version}"]
    if version in ("1", "2c"):
        cmd += ["-c", community]
    if source:
        cmd.append(f"--clientaddr={source}")
    cmd += list(extra)
    target = f"udp6:[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd.append(target)
    if version == "1":
        enterprise, agent_addr, generic, specific = v1
        cmd += [enterprise, agent_addr, str(generic), str(specific), ""]
    else:
        cmd += ["", trap_oid]
    cmd += list(vbs)
    env = dict(os.environ, MIBS="", MIBDIRS="/nonexistent")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env)


def link_varbinds(index, name=None, admin=1, oper=2):
    vbs = [(f"{IF_INDEX}.{index}", "i", index),
           (f"{IF_ADMIN}.{index}", "i", admin),
           (f"{IF_OPER}.{index}", "i", oper)]
    if name is not None:
        vbs.append((f"{IF_NAME}.{index}", "s", name))
    return varbinds(*vbs)


def capture(trap_oid, vbs=(), version="2c", community="public", extra=()):
    """The datagram snmptrap sends, caught on a socket of ours."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        proc = snmptrap(s.getsockname()[1], trap_oid, vbs, version=version,
                        community=community, extra=extra)
        assert proc.returncode == 0, proc.stderr
        data, _ = s.recvfrom(65535)
        return data
