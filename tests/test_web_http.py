"""The web over plain HTTP: headers, cookies, CSRF, log-in throttling, /metrics, /healthz;
and the administrators' customer-file edits on their own."""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from maild.config import load_config
from maild.routing.load import load_rules
from maild.web import rules_edit
from tests.conftest import ROOT
from tests.web_helpers import PASSWORD, WebMaild, mail, running_web, web_maild

__all__ = ["web_maild"]


class Client:
    """A cookie-keeping HTTP client that does not follow redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  NoRedirect)

    def request(self, path: str, form: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.base + path, data=data, timeout=30) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def csrf(self, path: str) -> str:
        _, _, body = self.request(path)
        match = re.search(r'name="csrf" value="([^"]+)"', body)
        assert match, body
        return match.group(1)

    def log_in(self, name: str, password: str) -> tuple[int, str]:
        token = self.csrf("/login")
        status, headers, _ = self.request("/login", {"csrf": token, "name": name,
                                                     "password": password})
        return status, headers.get("location", "")


def test_pages_carry_strict_headers_and_session_cookies_are_locked_down(
        web_maild: WebMaild) -> None:
    client = Client(web_maild.base)
    status, headers, _ = client.request("/login")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert client.request("/queues")[0] == 303  # not logged in: to the log-in page
    token = client.csrf("/login")
    status, headers, _ = client.request("/login", {"csrf": token, "name": "agnes",
                                                   "password": PASSWORD})
    assert status == 303
    cookie = headers["set-cookie"].lower()
    assert "maild_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http on loopback; https sets Secure
    assert client.request("/queues")[0] == 200


def test_forms_without_the_csrf_token_are_refused(web_maild: WebMaild) -> None:
    message_id = "csrf-test@bergstromsbygg.se"
    web_maild.send(mail("anna.lind@bergstromsbygg.se", "Hjälp", "Sidan är trasig.", message_id))
    number = web_maild.ticket_of(message_id)
    outsider = Client(web_maild.base)
    assert outsider.request("/login", {"name": "agnes", "password": PASSWORD})[0] == 403
    client = Client(web_maild.base)
    assert client.log_in("agnes", PASSWORD) == (303, "/queues")
    status, _, _ = client.request(f"/tickets/{number}/close", {"resolution": "x"})
    assert status == 403
    status, _, _ = client.request(f"/tickets/{number}/close", {"resolution": "x",
                                                               "csrf": "forged"})
    assert status == 403
    assert web_maild.daemon.query(f"SELECT status FROM ticket WHERE number = '{number}'")[0][0] \
        != "closed"
    token = client.csrf(f"/tickets/{number}")
    status, headers, _ = client.request(f"/tickets/{number}/close",
                                        {"resolution": "Rättat", "csrf": token})
    assert status == 303 and headers["location"].endswith("?done=close")
    assert web_maild.daemon.query(
        f"SELECT actor FROM ticket_event e JOIN ticket t ON t.id = e.ticket_id WHERE "
        f"t.number = '{number}' AND e.kind = 'status' ORDER BY e.id DESC LIMIT 1") == [
        ("web agnes",)]


def test_log_in_is_throttled_after_repeated_failures(web_maild: WebMaild) -> None:
    client = Client(web_maild.base)
    for _ in range(5):
        assert client.log_in("agnes", "wrong-password-1") == (303, "/login?error=login_failed")
    assert client.log_in("agnes", PASSWORD) == (303, "/login?error=login_throttled")
    assert client.log_in("root", PASSWORD) == (303, "/queues")  # another user is unaffected
    assert client.log_in("nobody", PASSWORD) == (303, "/login?error=login_failed")


def test_metrics_and_health(web_maild: WebMaild) -> None:
    web_maild.send(mail("anna.lind@bergstromsbygg.se", "Mätning", "Sidan är trasig.",
                        "metrics-test@bergstromsbygg.se"))
    web_maild.ticket_of("metrics-test@bergstromsbygg.se")
    client = Client(web_maild.base)
    status, headers, body = client.request("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'maild_messages_stored_total{transport="smtp"} 1.0' in body
    assert 'maild_messages_processed_total{kind="new"} 1.0' in body
    assert "maild_processing_latency_seconds_count 1.0" in body
    assert "maild_quarantine_messages 0.0" in body
    assert 'maild_outbox_items{state=' in body
    assert "maild_rules_reload_failures_total 0.0" in body
    assert re.search(r'maild_rules_info\{version="[0-9a-f]+"\} 1.0', body)
    status, _, body = client.request("/healthz")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok" and report["database"] == "ok"
    assert report["workers"]["process"] == "running"


def test_the_web_is_off_unless_configured_and_refuses_a_socket_path() -> None:
    assert load_config(env={}).http_listen is None
    assert str(load_config(env={"MAILD_HTTP_LISTEN": "127.0.0.1:8025"}).http_listen) == \
        "127.0.0.1:8025"
    with pytest.raises(Exception, match="one HOST:PORT"):
        load_config(env={"MAILD_HTTP_LISTEN": "unix:/run/maild.sock"})
    with pytest.raises(Exception, match="a list of IP addresses"):
        load_config(env={"MAILD_HTTP_TRUSTED_PROXIES": "proxy.example.se"})


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", copy)
    return copy


def _edit(rules: Path, customer: str, action: str, change: Callable[..., str],
          engine: object) -> str:
    return rules_edit.edit_customer(engine, rules, customer, action, change,  # type: ignore[arg-type]
                                    actor="web test")


def test_customer_edits_keep_comments_and_refuse_what_breaks_the_rules(
        rules_copy: Path, tmp_path: Path) -> None:
    from maild.db import open_database

    engine = open_database(f"sqlite:///{tmp_path / 'maild.db'}")
    path = rules_copy / "customers" / "bergstroms-bygg.toml"
    _edit(rules_copy, "bergstroms-bygg", "add-contact",
          lambda doc: rules_edit.add_contact(doc, "Eva.Berg@bergstromsbygg.se", "Eva Berg", ""),
          engine)
    _edit(rules_copy, "bergstroms-bygg", "remove-contact",
          lambda doc: rules_edit.remove_contact(doc, "anna.lind@bergstromsbygg.se"), engine)
    _edit(rules_copy, "bergstroms-bygg", "suspend",
          lambda doc: rules_edit.set_status(doc, "suspended"), engine)
    text = path.read_text(encoding="utf-8")
    assert "# The managing director writes from his private address" in text
    customer = load_rules(rules_copy).customers["bergstroms-bygg"]
    assert customer.status == "suspended"
    assert [c.address for c in customer.contacts] == ["johan.bergstrom62@gmail.com",
                                                      "eva.berg@bergstromsbygg.se"]
    before = path.read_bytes()
    for change, reason in (
            (lambda doc: rules_edit.add_domain(doc, "co.uk"), "public suffix"),
            (lambda doc: rules_edit.add_domain(doc, "lindqvistlogistik.se"), "already claimed"),
            (lambda doc: rules_edit.add_contact(doc, "not an address", "X", ""),
             "not an e-mail address"),
            (lambda doc: rules_edit.remove_domain(doc, "nosuch.se"), "not one of")):
        with pytest.raises(rules_edit.EditRefused, match=reason):
            _edit(rules_copy, "bergstroms-bygg", "edit", change, engine)
    assert path.read_bytes() == before
    with pytest.raises(rules_edit.EditRefused, match="no customer"):
        _edit(rules_copy, "../addresses", "suspend",
              lambda doc: rules_edit.set_status(doc, "suspended"), engine)
    with pytest.raises(rules_edit.EditRefused, match="changed by someone else"):
        rules_edit._replace(path, "name = 'x'\n", "0" * 64)
    assert path.read_bytes() == before
    assert len(rules_edit.recent_changes(engine)) == 3


def test_a_trusted_proxy_names_the_user_when_single_sign_on_is_on(
        tmp_path: Path, sink: tuple[object, int]) -> None:
    with running_web(tmp_path, sink[1], env={"MAILD_HTTP_SSO_HEADER": "X-Remote-User"}) as web:
        client = Client(web.base)
        client.opener.addheaders = [("X-Remote-User", "agnes")]
        status, headers, body = client.request("/queues")
        assert status == 200 and "agnes" in body
        assert "maild_session=" in headers["set-cookie"]
        token = re.search(r'name="csrf" value="([^"]+)"', body)
        assert token  # forms work: the proxy's user got a session with its CSRF token
        client.opener.addheaders = [("X-Remote-User", "mallory")]
        assert client.request("/queues")[0] == 403  # not a maild user


def test_the_header_means_nothing_when_single_sign_on_is_off(web_maild: WebMaild) -> None:
    client = Client(web_maild.base)
    client.opener.addheaders = [("X-Remote-User", "root")]
    assert client.request("/queues")[0] == 303
