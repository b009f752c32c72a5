"""A SIGHUP whose writer job fails in its commit, after the deduplication
and the helpdesk took the new configuration up: the database lives on a
small tmpfs that is full.  The server survives (under ASan: no use of the
refused configuration after a free), says so, goes on with the running
configuration, and a reload once there is room again applies the new one.

The commit fails for real: the job's SLA recomputation rewrites the clocks
of many open tickets (a new calendar moves their due dates), more pages
than the little room left holds.  Putting the running configuration back
rewrites the same clocks unchanged, which SQLite writes as the few pages
of an index only: that fits, so the test sees the restored configuration, not what a
half-applied job left.
"""
import errno
import os
import signal
import sqlite3
from datetime import datetime, timedelta, timezone

from checkutil import tmpfs
from conftest import Server, wait_for
from helpdesk_util import helpdesk_extra, many_events, open_ticket
from test_helpdesk_scales import PATH as SCALES

# The clocks of 1000 tickets moved are some 40 WAL pages; rewritten unchanged,
# only the pages of their next_check index, some 6: room for 15 between.
TICKETS = 1000
ROOM = 16 * 4096
REFUSED = "SIGHUP: cannot apply lifecycle:, topology:, the inventory and the helpdesk"


def new_configuration(extra):
    """fast open one hour a day, 5 to 6 hours from now (the open tickets'
    due dates move), P1 answered in 2 hours, and alice gone."""
    opens = (datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
             + timedelta(hours=6))
    out = extra.replace("daily: 00:00-24:00",
                        f"daily: {opens:%H}:00-{opens.hour + 1:02d}:00")
    out = out.replace("P1: {response: 1h,", "P1: {response: 2h,")
    start = out.index("  alice: ")
    return out[:start] + out[out.index("  bob: "):]


def without(extra, person):
    """extra with the helpdesk person (one line, as helpdesk_extra has it) gone."""
    lines = extra.splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(f"  {person}: ")]
    assert len(kept) == len(lines) - 1, f"{person} is not one line of the configuration"
    return "".join(kept)


def empty_wal(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        assert con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    finally:
        con.close()


def fill(directory, room):
    """Fill the file system of directory up to room bytes; the filler's path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as fp:
        for chunk in (1 << 20, 4096):
            try:
                while True:
                    fp.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        fp.truncate(os.fstat(fp.fileno()).st_size - room)
    st = os.statvfs(directory)
    assert st.f_bavail * st.f_frsize == room
    return filler


def sighup(srv, what):
    """SIGHUP, and wait for the log to say what once more (or the end)."""
    before = srv.log_text().count(what)
    srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: srv.log_text().count(what) > before or srv.proc.poll() is not None,
             what=f"the reload ({what})")
    assert srv.proc.poll() is None, f"the server died:\n{srv.log_text()}"


def people(srv):
    r = srv.get(SCALES)
    assert r.status == 200, r.body
    return [p["id"] for p in r.json()["people"]]


def test_a_reload_that_fails_in_its_commit_keeps_the_running_configuration(tmp_path):
    extra = helpdesk_extra(response="1h", resolution="1d")
    with tmpfs(tmp_path / "db", size="16m") as mnt:
        srv = Server(tmp_path / "server", extra=extra)
        srv.db = mnt / "tocsin.db"
        srv.write_config(extra=extra)
        srv.start()
        try:
            assert srv.post_events(many_events("web01", TICKETS, "critical", item="/data")).status == 200
            wait_for(lambda: srv.db_count("hd_tickets") >= TICKETS,
                     what=f"{TICKETS} open tickets")
            assert people(srv) == ["alice", "bob", "carol"]
            srv.write_config(extra=new_configuration(extra))
            # An empty WAL, then a full disk: the job's commit needs room.
            empty_wal(srv.db)
            filler = fill(mnt, ROOM)

            sighup(srv, REFUSED)
            log = srv.log_text()
            assert f"{REFUSED}: No space left on device; keeping the running configuration" in log
            assert "putting the running configuration back failed too" not in log
            assert "SIGHUP: configuration reloaded" not in log
            # The writer's helpdesk is the running one again: alice is
            # still a person, a new ticket gets the running 1 h target.
            assert people(srv) == ["alice", "bob", "carol"]

            # A second refusal puts back the running configuration, not
            # the first refused one (which the history now also holds).
            filler.unlink()
            empty_wal(srv.db)
            filler = fill(mnt, ROOM)
            srv.write_config(extra=without(new_configuration(extra), "bob"))
            sighup(srv, REFUSED)
            log = srv.log_text()
            assert log.count(f"{REFUSED}: No space left on device; keeping the running configuration") == 2
            assert "putting the running configuration back failed too" not in log
            assert people(srv) == ["alice", "bob", "carol"]

            srv.write_config(extra=new_configuration(extra))
            filler.unlink()
            tid = open_ticket(srv, "web01", "critical", item="/after-refusal")
            assert srv.ticket(tid)["sla"]["response"]["target_s"] == 3600

            # With room again, the same configuration applies.
            sighup(srv, "SIGHUP: configuration reloaded")
            assert people(srv) == ["bob", "carol"]
            tid = open_ticket(srv, "web01", "critical", item="/after-reload")
            assert srv.ticket(tid)["sla"]["response"]["target_s"] == 7200
        finally:
            srv.stop()
