"""Helpers for the web console's tests: accounts, logins and sessions."""
import json

from conftest import ADMIN_TOKEN, http
from helpdesk_util import event, post

PASSWORD = "correct horse battery"


def create_account(server, name, role="technician", password=PASSWORD):
    r = server.request("PUT", f"/api/v1/accounts/{name}",
                       body={"role": role, "password": password}, token=ADMIN_TOKEN)
    assert r.status in (200, 201), r.body
    return r


def login_request(server, name, password, content_type="application/json"):
    body = json.dumps({"name": name, "password": password}).encode()
    return http("POST", server.url + "/api/v1/session", body=body,
                headers={"Content-Type": content_type}, context=server.context)


class Session:
    """A logged-in browser, as far as the API can tell: cookie and CSRF token."""

    def __init__(self, server, name, password=PASSWORD):
        self.server = server
        r = login_request(server, name, password)
        assert r.status == 201, r.body
        self.set_cookie = r.headers["Set-Cookie"]
        self.cookie = self.set_cookie.split(";")[0]
        self.csrf = r.json()["csrf"]
        self.info = r.json()

    def request(self, method, path, body=None, csrf=True, headers=None):
        h = {"Cookie": self.cookie}
        if csrf and self.csrf:
            h["X-Tocsin-CSRF"] = self.csrf
        h.update(headers or {})
        return self.server.request(method, path, body=body, headers=h)

    def logout(self):
        return self.request("DELETE", "/api/v1/session")


def audit(server):
    r = server.request("GET", "/api/v1/audit?limit=1000", token=ADMIN_TOKEN)
    assert r.status == 200, r.body
    return r.json()["audit"]


def open_ticket(server, host, state="critical", item="/srv", check="disk",
                summary=None, context=None):
    batch = event(host, state, item, check, summary=summary)
    if context is not None:
        batch["events"][0]["context"] = context
    post(server, batch)
    for t in server.tickets("open"):
        if t["host"] == host and t["item"] == item and t["check"] == check:
            return t["id"]
    raise AssertionError(f"no open ticket for {host} {item}")
