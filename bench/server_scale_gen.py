"""server.yaml of a large MSP for bench/server_scale.sh, and its host
credentials in the database.

    python3 bench/server_scale_gen.py N DIR > DIR/s.yaml
    python3 bench/server_scale_gen.py --credentials N DIR [COUNT]  # after a first start

N customers, each with a contract of its own, a technician (with a
token under auth.tokens) and a queue the technician works in; 4 * N
hosts, each a trap device with an address, an engine id and an SNMPv3
user; N trap networks, /24s holding the devices (one /16 above all
of them), with a community and a user; and, with --credentials, 4 * N
host credentials (or COUNT, rotations' successors beyond 4 * N; and
N enrollment tokens) in DIR/tocsin.db, written
the way enrollment leaves them.  The calendar is one zone for all, so
that what is timed is the lookups, not zone files.
"""
import os
import sqlite3
import sys


def config(n, d):
    out = [f"""listen: 127.0.0.1:0
database: {d}/tocsin.db
allow_plain_http: true
auth:
  tokens:
    - {{name: admin, token: admin-token-0123456789abcdef, role: admin}}"""]
    for i in range(n):
        out.append(f"    - {{name: tech{i}, token: tech-token-{i:016d}, role: technician}}")
    out.append("customers:")
    for i in range(n):
        out.append(f"  c{i}: {{name: Customer {i}, contract: k{i}}}")
    out.append("contracts:")
    for i in range(n):
        out.append(f"""  k{i}:
    name: Contract {i}
    calendar: {{timezone: UTC, hours: {{mon-fri: 08:00-17:00}}}}
    targets: {{P1: {{response: 1bd, resolution: 2bd}}}}""")
    out.append("people:")
    for i in range(n):
        out.append(f"  tech{i}: {{name: Tech {i}, email: tech{i}@msp.example, "
                   f"level: {1 + i % 3}, queues: [q{i}, q{(i + 1) % n}]}}")
    out.append("helpdesk:\n  default_contract: k0\n  default_queue: q0\n  queues:")
    for i in range(n):
        out.append(f"    q{i}: {{email: q{i}@msp.example, lead: tech{i}}}")
    out.append("  routing:")
    for i in range(0, n, max(1, n // 100)):
        out.append(f"    - match: {{customer: c{i}}}\n      set: {{queue: q{i}}}")
    out.append("hosts:")
    for i in range(4 * n):
        out.append(f"""  r{i}:
    customer: c{i % n}
    snmp:
      addresses: [{address(i)}]
      users: [netops]
      engine_id: 0x8000000903{i:012x}""")
    out.append("""traps:
  listen: [127.0.0.1:0]
  users:
    - {name: netops, auth: sha256, auth_key: authpass123, priv: aes, priv_key: privpass123}
    - {name: noc, auth: sha256, auth_key: authpass456, priv: aes, priv_key: privpass456}
  networks:
    - {cidr: 10.0.0.0/8, users: [noc]}""")
    for k in range(n - 1):
        out.append(f"    - {{cidr: 10.{k // 256 % 256}.{k % 256}.0/24, "
                   f"community: public{k}, users: [noc]}}")
    return "\n".join(out) + "\n"


def address(i):
    """Four devices per /24, so N - 1 networks hold them all."""
    k = i // 4
    return f"10.{k // 256 % 256}.{k % 256}.{1 + i % 4}"


def credentials(n, d, count):
    db = sqlite3.connect(os.path.join(d, "tocsin.db"))
    now = 1_800_000_000_000
    db.executemany(
        "INSERT INTO enrollment_tokens(customer, hash, created_at, created_by,"
        " expires_at, max_uses) VALUES (?, ?, ?, 'admin', ?, NULL)",
        ((f"c{i}", os.urandom(32), now, now + 86400_000) for i in range(n)))
    db.executemany(
        "INSERT INTO credentials(host, customer, hash, created_at, created_by)"
        " VALUES (?, ?, ?, ?, 'enrollment')",
        ((f"r{i % (4 * n)}", f"c{i % n}", os.urandom(32), now)
         for i in range(count)))
    db.commit()
    db.close()


if sys.argv[1] == "--credentials":
    n = int(sys.argv[2])
    credentials(n, sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 4 * n)
else:
    sys.stdout.write(config(int(sys.argv[1]), sys.argv[2]))
