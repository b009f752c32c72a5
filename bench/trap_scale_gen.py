"""server.yaml with N devices for bench/trap_scale.sh: each with an
address, an engine id and the v3 users (netops, then noc1, noc2, ...).

    python3 bench/trap_scale_gen.py N DIR [USERS, default 1] > DIR/s.yaml
"""
import sys

n = int(sys.argv[1])
d = sys.argv[2]
nusers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
names = ["netops"] + [f"noc{i}" for i in range(1, nusers)]
keys = ["authpass123"] + [f"authpass{i}x123" for i in range(1, nusers)]
print(f"""listen: 127.0.0.1:0
database: {d}/tocsin.db
allow_plain_http: true
auth:
  tokens:
    - {{name: a, token: admin-token-0123456789abcdef, role: admin}}
traps:
  listen: [127.0.0.1:0]
  users:""")
for name, key in zip(names, keys):
    print(f"    - {{name: {name}, auth: sha256, auth_key: {key}, priv: aes, priv_key: privpass123}}")
print("""customers:
  acme: {name: Acme}
hosts:""")
for i in range(n):
    print(f"""  r{i}:
    customer: acme
    snmp:
      addresses: [10.{i//65536%256}.{i//256%256}.{i%256}]
      users: [{", ".join(names)}]
      engine_id: 0x8000000903{i:012x}""")
