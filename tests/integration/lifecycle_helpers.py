"""Helpers for the lifecycle, topology and silence tests: events exactly
as the agents, the trap listener and silence detection post them."""
import datetime
import uuid

from conftest import Server


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def event(check, item, state, summary=None, observed=None):
    return {"id": str(uuid.uuid4()), "check": check, "item": item, "state": state,
            "summary": summary or f"{check} {item} is {state}",
            "observed_at": iso(observed or now())}


def post(server, host, *events):
    r = server.post_events({"host": host, "events": list(events)})
    assert r.status == 200, r.body
    return r.json()


def find(tickets, host, check, item):
    for t in tickets:
        if (t["host"], t["check"], t["item"]) == (host, check, item):
            return t
    return None


def start_server(tmp_path, extra):
    return Server(tmp_path / "server", extra=extra).start()


def metric(server, name, labels=""):
    """The value of one sample in /metrics, e.g. metric(s, "tocsin_tickets_total", 'change="opened"')."""
    r = server.get("/metrics")
    assert r.status == 200
    key = f"{name}{{{labels}}}" if labels else name
    for line in r.body.decode().splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{key} not in /metrics:\n{r.body.decode()}")
