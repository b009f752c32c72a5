"""The web console in a real headless Chromium (Debian's), driven by
playwright-core (tests/console/, installed into build/ by make), against
the real collector and a real agent's event."""
import json
import os
import subprocess

import pytest

from conftest import ROOT, Server, run_agent, write_agent_config
from console_util import PASSWORD, audit, create_account, open_ticket
from helpdesk_util import many_events, post

NODE_MODULES = ROOT / "build" / "console-tests" / "node_modules"
SCRIPTS = ROOT / "tests" / "console"
XSS = '<img src=x onerror="window.__xss=1">'
BULK = 1000


def run_browser(args, script="console_browser.js"):
    assert (NODE_MODULES / "playwright-core").is_dir(), \
        "playwright-core is missing: run `make test` (it installs tests/console into build/)"
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    r = subprocess.run(["node", str(SCRIPTS / script), json.dumps(args)], capture_output=True,
                       text=True, timeout=120, env=env)
    assert r.stdout.strip(), f"the browser script printed nothing:\n{r.stderr}"
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, f"browser step failed: {json.dumps(seen, indent=1)}\n{r.stderr}"
    return seen


@pytest.fixture
def console(tmp_path):
    srv = Server(tmp_path / "server", extra="console:\n  login_failures: 3\n").start()
    yield srv
    srv.stop()


def test_a_technician_works_a_ticket_in_the_browser(console, tmp_path):
    create_account(console, "carol")
    create_account(console, "vera", role="viewer")
    # A real agent's event: a plugin that says the RAID is degraded.
    plugin = tmp_path / "raid.sh"
    plugin.write_text("#!/bin/sh\necho 'RAID WARNING - 1 of 2 disks'\n"
                      "echo 'md0: degraded, sdb1 missing'\nexit 1\n")
    plugin.chmod(0o755)
    config = write_agent_config(tmp_path / "agent.yaml", console.url, host="raid01",
                                checks=f"  plugin:\n    plugins:\n"
                                       f"      - {{name: raid, command: [{plugin}]}}\n")
    run = run_agent(config, "--once")
    assert run.returncode == 0, run.stderr
    plugin_ticket = [t for t in console.tickets("open") if t["host"] == "raid01"][0]["id"]
    xss_ticket = open_ticket(console, "evil01", summary=XSS)
    post(console, many_events("bulk01", BULK, "warning"))

    seen = run_browser({"url": console.url, "tech": "carol", "viewer": "vera",
                        "password": PASSWORD, "plugin_ticket": plugin_ticket,
                        "plugin_host": "raid01", "xss_ticket": xss_ticket,
                        "failures_to_block": 3})

    # The page's headers: no script but its own, no frames.
    csp = seen["headers"]["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert seen["headers"]["x-content-type-options"] == "nosniff"
    # Login failure, then the list of every open ticket.
    assert seen["wrong_password_message"] == "wrong name or password"
    # The navigation shows only once logged in (CSS must not defeat hidden).
    assert seen["header_display_at_login"] == "none"
    assert seen["header_display_logged_in"] == "flex"
    assert seen["who"] == "carol (technician)"
    assert seen["rows"] == BULK + 2
    assert seen["ticket_count"] == f"{BULK + 2} of {BULK + 2} tickets"
    assert seen["filtered_rows"] == ["raid01"]
    # The agent's event with its context (the plugin's long output).
    assert seen["ticket_summary"] == "RAID WARNING - 1 of 2 disks"
    assert "md0: degraded, sdb1 missing" in seen["occurrences"]
    # The actions, with the account as their actor, in the browser and the store.
    assert any("carol" in j and "comment" in j and "looking at the array" in j
               for j in seen["journal"])
    assert any("carol" in j and "acknowledged" in j for j in seen["journal"])
    assert seen["status_after"] == "acknowledged"
    journal = console.ticket(plugin_ticket)["journal"]
    assert ("carol", "looking at the array") in [(j["actor"], j["text"]) for j in journal]
    assert "cannot close ticket" in seen["close_error"]
    assert seen["priority_options"] == ["P1", "P2", "P3", "P4"]
    assert console.ticket(plugin_ticket)["priority"] == "P1"
    # CSRF: the cookie alone changes nothing.
    assert seen["forged"]["status"] == 403
    assert "X-Tocsin-CSRF" in seen["forged"]["body"]["error"]
    assert "forged" not in json.dumps(console.ticket(plugin_ticket)["journal"])
    # XSS: markup from an event shows as text and never runs.
    assert seen["xss_row_text"] == XSS
    assert seen["xss_title"] == XSS
    assert seen["images_in_list"] == 0 and seen["images_in_ticket"] == 0
    assert seen["xss_ran"] == 0
    # Logout ends the session in the server too.
    assert seen["after_logout"] == 401
    assert seen["logout_message"] == "Logged out."
    # A viewer sees no actions and is refused if it tries.
    assert seen["viewer_who"] == "vera (viewer)"
    assert seen["viewer_action_buttons"] == 0
    assert seen["viewer_forced"]["status"] == 403
    assert console.ticket(plugin_ticket)["status"] == "acknowledged"
    # The address failed 3 times: the next login is refused for a while.
    msgs = seen["rate_limit_messages"]
    assert msgs[:2] == ["wrong name or password"] * 2
    assert msgs[2].startswith("too many failed logins")
    entries = [(e["action"], e["actor"], e["target"]) for e in audit(console)]
    assert entries.count(("login.fail", "carol", "address 127.0.0.1")) == 3
    assert ("login", "carol", "address 127.0.0.1") in entries
    assert ("logout", "vera", "address 127.0.0.1") in entries
    # The browser logs refused requests; nothing else may go wrong in the page.
    assert [e for e in seen["console_errors"]
            if not e.startswith("Failed to load resource: the server responded with a status of 4")
            ] == []

    weight = sum(seen["weights"].values())
    print(f"\nconsole page weight: {weight} bytes ({seen['weights']}); "
          f"{BULK + 2} open tickets listed {seen['list_render_ms']} ms after the login click "
          f"(of which fetching and rendering the list {seen['list_fetch_render_ms']} ms)")
    (ROOT / "build" / "console-figures.txt").write_text(
        f"page_weight_bytes {weight}\nlist_{BULK + 2}_after_login_ms {seen['list_render_ms']}\n"
        f"list_{BULK + 2}_fetch_render_ms {seen['list_fetch_render_ms']}\n")


def test_an_administrator_uses_the_other_pages(console):
    create_account(console, "root", role="admin")
    open_ticket(console, "web01")
    open_ticket(console, "db01")
    # A host enrolled with a token: its credential is for the admin to revoke.
    token = console.admin("POST", "/api/v1/enrollment-tokens", {"customer": "globex"}).json()
    r = console.request("POST", "/api/v1/enroll", body={"host": "app07"}, token=token["token"])
    assert r.status == 201, r.body

    seen = run_browser({"url": console.url, "admin": "root", "password": PASSWORD},
                       script="console_admin.js")

    assert seen["admin_link_visible"] is True
    assert seen["filter_after_refresh"] == "web"
    assert seen["count_after_refresh"] == "1 of 2 tickets"
    assert seen["short_password_error"] == "password: 5 characters; it needs 10 to 1024"
    assert seen["accounts"] == ["newtech", "root"]
    assert [a["role"] for a in console.admin("GET", "/api/v1/accounts").json()["accounts"]] == [
        "technician", "admin"]
    assert seen["issued"].startswith("Token #2 (shown only now): ")
    assert sorted(seen["tokens"]) == ["acme", "globex"]
    tokens = console.admin("GET", "/api/v1/enrollment-tokens").json()["enrollment_tokens"]
    assert sorted((t["customer"], t["state"], t["created_by"]) for t in tokens) == [
        ("acme", "revoked", "root"), ("globex", "active", "admin")]
    assert seen["credentials"] == ["app07"]
    [cred] = console.admin("GET", "/api/v1/credentials").json()["credentials"]
    assert (cred["host"], cred["state"]) == ("app07", "revoked")
    assert "account.create" in seen["audit_actions"]
    assert "enrollment_token.revoke" in seen["audit_actions"]
    assert "login" in seen["audit_actions"]
    assert "duration" in seen["silence_error"]
    assert seen["silence_row"][1:3] == ["web*", "*"]
    assert "maintenance" in seen["silence_row"]
    assert seen["silence_after_remove"] == []
    [silence] = console.get("/api/v1/silences?state=all").json()["silences"]
    assert (silence["author"], silence["removed_by"]) == ("root", "root")
    assert seen["traps"] == "0 kept for review"
    assert seen["password_error"] == "current: wrong password"
    assert seen["after_change"] == "Password changed: log in with the new one."
    assert seen["who"] == "root (admin)"
    assert seen["page_errors"] == []


def test_a_ticket_with_the_helpdesk_fields(tmp_path):
    from helpdesk_util import act, helpdesk_extra
    srv = Server(tmp_path / "desk", extra=helpdesk_extra()).start()
    try:
        create_account(srv, "alice")
        first = open_ticket(srv, "web01")
        assert act(srv, first, {"action": "resolve", "note": "replaced the disk"}).status == 200
        again = open_ticket(srv, "web01")
        assert again != first

        seen = run_browser({"url": srv.url, "tech": "alice", "password": PASSWORD,
                            "ticket": again}, script="console_desk.js")

        f = seen["fields"]
        assert (f["Customer"], f["Contract"], f["Priority"]) == ("acme", "fast", "P1")
        assert f["Queue"] == "managed-it, level 1"
        assert f["Response"].startswith("running due ")
        assert f["Resolution"].startswith("running due ")
        assert seen["knowledge"] == "Runbook: https://wiki.shop.example/disk"
        assert f"#{first}" in seen["history"] and "replaced the disk" in seen["history"]
        assert "note" in seen["resolve_error"]
        assert seen["status"] == "resolved"
        resolved = [j for j in srv.ticket(again)["journal"] if j["new"] == "resolved"]
        assert [(j["actor"], j["text"]) for j in resolved] == [("alice", "swapped the disk again")]
        # The list (state all): both tickets, with customer and queue.
        rows = {r[0]: r for r in seen["list_cells"]}
        assert rows[str(again)][2] == "resolved" and rows[str(again)][6] == "acme"
        assert rows[str(first)][7] == "managed-it"
    finally:
        srv.stop()


def test_a_parent_ticket_with_its_children(tmp_path):
    from lifecycle_helpers import event as lc_event, post as lc_post
    inventory = ("customers:\n  acme: {name: ACME GmbH}\nhosts:\n"
                 "  acme-router: {customer: acme, role: central, tags: [network]}\n"
                 "  web01: {customer: acme, role: central, parent: acme-router}\n"
                 "  web02: {customer: acme, role: central, parent: acme-router}\n")
    srv = Server(tmp_path / "topo", extra=inventory).start()
    try:
        create_account(srv, "alice")
        lc_post(srv, "acme-router", lc_event("link", "eth0", "critical", "eth0 is down"))
        lc_post(srv, "web01", lc_event("heartbeat", "alive", "critical", "web01 silent"))
        lc_post(srv, "web02", lc_event("heartbeat", "alive", "critical", "web02 silent"))
        [router] = srv.tickets("open")

        seen = run_browser({"url": srv.url, "tech": "alice", "password": PASSWORD},
                           script="console_topology.js")

        # One row: the children are under their parent, counted in its badge.
        assert seen["rows"] == [["acme-router", "eth0 is down" + "2 children"]]
        assert sorted(c.split(" ", 1)[1] for c in seen["children"]) == [
            "web01: web01 silent", "web02: web02 silent"]
        assert seen["child_fields"]["Parent"] == f"#{router['id']}"
    finally:
        srv.stop()


def test_a_technician_merges_a_duplicate_in_the_browser(tmp_path):
    from helpdesk_util import act, helpdesk_extra, open_ticket as desk_ticket
    srv = Server(tmp_path / "merge", extra=helpdesk_extra()).start()
    try:
        create_account(srv, "alice")
        # The same outage seen twice, and a ticket already closed.
        worked = desk_ticket(srv, "web01", item="/srv")
        dup = desk_ticket(srv, "web01", item="/data")
        closed = desk_ticket(srv, "web01", item="/var")
        assert act(srv, closed, {"action": "resolve", "note": "cleaned up"}).status == 200
        assert act(srv, closed, {"action": "close"}).status == 200

        seen = run_browser({"url": srv.url, "tech": "alice", "password": PASSWORD,
                            "dup": dup, "into": worked, "closed": closed, "missing": 999999},
                           script="console_merge.js")

        # The server's refusals, word for word, in the action error line.
        assert seen["closed_error"] == f"cannot merge into ticket {closed}: it is closed"
        assert seen["self_error"] == "into: a ticket cannot be merged into itself"
        assert seen["missing_error"] == "into: no ticket 999999"
        assert seen["empty_error"] == "into: enter the number of the ticket to merge into"
        assert seen["confirm_shown_for_empty"] is False
        # Nothing happens before the confirmation, nor after a cancel.
        assert seen["question"] == f"Merge #{dup} into #{worked}? This closes #{dup}."
        assert seen["status_while_asked"] == "new"
        assert seen["confirm_after_cancel"] is False
        assert seen["status_after_cancel"] == "new"
        # The duplicate: closed, linked to the survivor, not to be reopened.
        assert seen["fields"]["Status"] == "closed"
        assert seen["fields"]["Merged into"] == f"#{worked}"
        assert seen["merged_into_href"] == f"#/ticket/{worked}"
        assert seen["reopen_before"] == 1 and seen["reopen_after"] == 0
        assert f"Merged into #{worked}" in seen["merged_note"]
        assert any(j.endswith(f"alice merge into #{worked}same outage") for j in seen["journal"])
        assert f"#/ticket/{worked}" in seen["journal_links"]
        # The survivor's journal names the duplicate, as a link.
        assert any(j.endswith(f"alice merged from #{dup}same outage")
                   for j in seen["survivor_journal"])
        assert f"#/ticket/{dup}" in seen["survivor_journal_links"]
        assert seen["survivor_reopen"] == 1
        assert seen["page_errors"] == []
        # And so in the store.
        t = srv.ticket(dup)
        assert (t["status"], t["merged_into"]) == ("closed", worked)
        assert ("alice", "merged", str(dup), "same outage") in [
            (j["actor"], j["action"], j["new"], j["text"]) for j in srv.ticket(worked)["journal"]]
        assert srv.ticket(closed)["status"] == "closed"
    finally:
        srv.stop()


def test_without_the_scales_the_impact_is_typed_in_the_browser(tmp_path):
    from helpdesk_util import helpdesk_extra, open_ticket as desk_ticket
    srv = Server(tmp_path / "impact", extra=helpdesk_extra()).start()
    try:
        create_account(srv, "alice")
        # web01 is central (impact high), the disk critical (urgency high): P1.
        ticket = desk_ticket(srv, "web01")

        seen = run_browser({"url": srv.url, "tech": "alice", "password": PASSWORD,
                            "ticket": ticket}, script="console_impact.js")

        before = seen["before"]
        assert (before["Impact"], before["Urgency"], before["Priority"]) == ("high", "high", "P1")
        # Without the scales: text inputs, as before.
        assert seen["inputs"] == ["input", "input", "input", "input"]
        assert seen["impact_input_before"] == "high"
        assert seen["impact_error"] == "impact: 'huge' is not one of high, medium, low"
        # The default matrix: impact low with urgency high is P3.
        assert (seen["after"]["Impact"], seen["after"]["Priority"]) == ("low", "P3")
        assert seen["error_after"] == ""
        assert any("alice priority P1 → P3" in j for j in seen["journal"])
        t = srv.ticket(ticket)
        assert (t["impact"], t["priority"]) == ("low", "P3")
    finally:
        srv.stop()


def test_a_technician_picks_impact_and_assignee_from_the_helpdesk(tmp_path):
    from helpdesk_util import helpdesk_extra, open_ticket as desk_ticket
    srv = Server(tmp_path / "scales", extra=helpdesk_extra()).start()
    try:
        create_account(srv, "alice")
        # web01 is central (impact high), the disk critical (urgency high): P1.
        ticket = desk_ticket(srv, "web01")

        seen = run_browser({"url": srv.url, "tech": "alice", "password": PASSWORD,
                            "ticket": ticket}, script="console_scales.js")

        # Selects of the helpdesk's scales, the ticket's values selected.
        assert seen["impact_before"] == {"tag": "select", "value": "high", "options": [
            ["high", "high"], ["medium", "medium"], ["low", "low"]]}
        assert seen["urgency_before"]["value"] == "high"
        assert [v for v, _ in seen["urgency_before"]["options"]] == [
            "critical", "high", "medium", "low"]
        assert seen["priority_before"]["value"] == "P1"
        assert [v for v, _ in seen["priority_before"]["options"]] == ["P1", "P2", "P3", "P4"]
        # The people by display name (never an address), and nobody.
        assert seen["assignee_before"] == {"tag": "select", "value": "", "options": [
            ["", "– nobody –"], ["alice", "Alice Adams (alice)"],
            ["bob", "Bob Builder (bob)"], ["carol", "Carol Chief (carol)"]]}
        # The picked impact applies, and the priority follows the matrix.
        assert (seen["after_impact"]["Impact"], seen["after_impact"]["Priority"]) == ("low", "P3")
        assert seen["impact_after"]["value"] == "low"
        assert seen["priority_after"]["value"] == "P3"
        # The picked assignee, then nobody again.
        assert seen["after_assign"]["Assignee"] == "bob"
        assert seen["assignee_after"]["value"] == "bob"
        assert "Assignee" not in seen["after_unassign"]
        assert seen["assignee_unassigned"]["value"] == ""
        assert seen["error_after"] == ""
        # Once per page load, however often a ticket is shown.
        assert seen["scales_requests"] == 1
        assert seen["impact_again"]["value"] == "low"
        assert seen["page_errors"] == []
        t = srv.ticket(ticket)
        assert (t["impact"], t["priority"], t["assignee"]) == ("low", "P3", None)
        assert [(j["actor"], j["action"], j["old"], j["new"]) for j in t["journal"]
                if j["action"] == "assignee"] == [
            ("alice", "assignee", None, "bob"), ("alice", "assignee", "bob", None)]
    finally:
        srv.stop()
