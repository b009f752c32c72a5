import sys
n=int(sys.argv[1]); d=sys.argv[2]
print(f"""listen: 127.0.0.1:0
database: {d}/tocsin.db
allow_plain_http: true
auth:
  tokens:
    - {{name: a, token: admin-token-0123456789abcdef, role: admin}}
traps:
  listen: [127.0.0.1:0]
  users:
    - {{name: netops, auth: sha256, auth_key: authpass123, priv: aes, priv_key: privpass123}}
customers:
  acme: {{name: Acme}}
hosts:""")
for i in range(n):
    print(f"""  r{i}:
    customer: acme
    snmp:
      addresses: [10.{i//65536%256}.{i//256%256}.{i%256}]
      users: [netops]
      engine_id: 0x8000000903{i:012x}""")
