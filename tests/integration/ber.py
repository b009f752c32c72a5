"""A tiny BER encoder for SNMP packets the net-snmp tools will not make:
keyless (noAuthNoPriv) v3 traps naming a user with keys, informs with a
chosen request id and sysUpTime.0.  Tests only; the collector itself never
encodes BER by hand (net-snmp does)."""

def _len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b

def tlv(tag, body):
    return bytes([tag]) + _len(len(body)) + body

def integer(v, tag=0x02):
    n = max(1, (v.bit_length() + 8) // 8)
    return tlv(tag, v.to_bytes(n, "big", signed=True))

def octets(b, tag=0x04):
    if isinstance(b, str):
        b = b.encode()
    return tlv(tag, b)

def oid(text):
    parts = [int(x) for x in text.strip(".").split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7f]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7f))
            p >>= 7
        body += bytes(reversed(enc))
    return tlv(0x06, body)

def seq(*items):
    return tlv(0x30, b"".join(items))

def timeticks(v):
    return integer(v, 0x43)

def ipaddr(text):
    return tlv(0x40, bytes(int(x) for x in text.split(".")))

SYSUPTIME0 = "1.3.6.1.2.1.1.3.0"
TRAPOID0 = "1.3.6.1.6.3.1.1.4.1.0"

def varbinds(trap_oid, vbs, uptime=4242):
    items = [seq(oid(SYSUPTIME0), timeticks(uptime)),
             seq(oid(TRAPOID0), oid(trap_oid))]
    items += [seq(oid(o), v) for o, v in vbs]
    return seq(*items)

def pdu(tag, reqid, vbl):
    return tlv(tag, integer(reqid) + integer(0) + integer(0) + vbl)

def v2c(community, tag, reqid, trap_oid, vbs, uptime=4242):
    return seq(integer(1), octets(community),
               pdu(tag, reqid, varbinds(trap_oid, vbs, uptime)))

TRAP2 = 0xA7
INFORM = 0xA6

def v3_noauth(engine_id, user, trap_oid, vbs, boots=1, time=1, msgid=1, reqid=1):
    usm = seq(octets(engine_id), integer(boots), integer(time), octets(user),
              octets(b""), octets(b""))
    scoped = seq(octets(engine_id), octets(b""),
                 pdu(TRAP2, reqid, varbinds(trap_oid, vbs)))
    return seq(integer(3), seq(integer(msgid), integer(65507), octets(b"\x00"),
                               integer(3)),
               octets(usm), scoped)
