"""The web in a real Chromium: log in, queues, a ticket, a reply that reaches the relay,
queue boundaries, an administrator's domain edit picked up live, and no stored XSS."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.daemon_helpers import wait_until
from tests.mailmaker import authenticated_headers
from tests.sink import RecordingSink
from tests.web_helpers import WebMaild, browser, log_in, mail, web_maild

__all__ = ["browser", "web_maild"]  # fixtures

SCREENSHOTS = os.environ.get("MAILD_SCREENSHOTS")  # docs/make-screenshots sets this


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_agent_logs_in_sees_the_queue_opens_a_ticket_and_the_reply_reaches_the_customer(
        web_maild: WebMaild, browser: Any, sink: tuple[RecordingSink, int]) -> None:
    recorder, _ = sink
    message_id = make_msgid(domain="bergstromsbygg.se")[1:-1]
    web_maild.send(mail("Anna Lind <anna.lind@bergstromsbygg.se>",
                        "Bokningssidan visar fel 500",
                        "Hej!\n\nBokningssidan visar fel 500 sedan i morse i Chrome på "
                        "Windows 11.\n\nAnna", message_id))
    number = web_maild.ticket_of(message_id)
    page = log_in(browser, web_maild.base, "agnes")
    row = page.locator("tr[data-queue=web]")
    assert row.count() == 1
    assert page.locator("tr[data-queue=erp]").count() == 0  # not one of agnes's queues
    assert int(row.locator("td[data-key=new]").inner_text()) + int(
        row.locator("td[data-key=waiting]").inner_text()) >= 1
    _shot(page, "web-queues.png")

    page.click("a[href='/tickets?queue=web']")
    link = page.locator(f"td.number a:text-is('{number}')")
    assert link.count() == 1
    link.click()
    page.wait_for_url(f"**/tickets/{number}")
    assert page.locator("#ticket-number").inner_text() == number
    assert "Bokningssidan visar fel 500 sedan i morse" in page.locator(".conversation").inner_text()
    _shot(page, "web-ticket.png")

    page.fill("#reply-form textarea[name=text]", "Hej Anna!\n\nVi har hittat felet och rättar "
              "det i dag.\n\nVänliga hälsningar\nAgnes")
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("#done")
    assert page.locator("#status").inner_text() == "answered"

    wait_until(lambda: any(d.recipients == ["anna.lind@bergstromsbygg.se"]
                           and "Vi har hittat felet" in d.message.get_body().get_content()
                           for d in recorder.deliveries), what="the reply at the relay")
    reply = next(d.message for d in recorder.deliveries
                 if "Vi har hittat felet" in d.message.get_body().get_content())
    assert f"[{number}]" in reply["Subject"]
    assert reply["X-Maild-Ticket"] == number
    assert reply["In-Reply-To"] == f"<{message_id}>"
    assert f"<{message_id}>" in reply["References"]
    assert reply["Auto-Submitted"] is None  # a person's reply, not an automatic one
    first = web_maild.daemon.query(f"SELECT first_response_at FROM ticket WHERE number = "
                                   f"'{number}'")[0][0]
    assert first is not None


def test_an_agent_cannot_open_a_ticket_of_another_queue(web_maild: WebMaild,
                                                        browser: Any) -> None:
    message_id = make_msgid(domain="lindqvistlogistik.se")[1:-1]
    web_maild.send(mail("Maria Holm <maria.holm@lindqvistlogistik.se>", "Fakturan saknas",
                        "Hej, fakturan för oktober saknas i affärssystemet.", message_id))
    number = web_maild.ticket_of(message_id)
    page = log_in(browser, web_maild.base, "agnes")
    response = page.goto(f"{web_maild.base}/tickets/{number}")
    assert response is not None
    assert response.status == 403
    assert "Fakturan" not in page.content()
    page.goto(f"{web_maild.base}/tickets")
    assert page.locator(f"td.number a:text-is('{number}')").count() == 0
    # a forged form post is refused as well, and changes nothing
    status = page.request.post(f"{web_maild.base}/tickets/{number}/close",
                               form={"csrf": "x", "resolution": "nope"}).status
    assert status == 403
    assert web_maild.daemon.query(f"SELECT status FROM ticket WHERE number = '{number}'")[0][0] \
        != "closed"


def test_an_admin_adds_a_domain_and_new_mail_from_it_routes_to_that_customer_at_once(
        web_maild: WebMaild, browser: Any) -> None:
    page = log_in(browser, web_maild.base, "root")
    page.goto(f"{web_maild.base}/admin")
    assert page.locator("#rules-ok").count() == 1
    form = page.locator("tr#bergstroms-bygg form.add-domain")
    form.locator("input[name=domain]").fill("bergstrom-bygg.nu")
    form.locator("button").click()
    page.wait_for_selector("#done")
    text = (web_maild.rules / "customers" / "bergstroms-bygg.toml").read_text(encoding="utf-8")
    assert 'domains = ["bergstromsbygg.se", "bergstrom-bygg.nu"]' in text
    assert "# A Care customer: web site and booking app maintained by us." in text  # kept
    assert web_maild.daemon.query("SELECT actor, action FROM admin_event") == [
        ("web root", "add-domain")]

    message_id = make_msgid(domain="bergstrom-bygg.nu")[1:-1]
    web_maild.send(mail("Per <per@bergstrom-bygg.nu>", "Ny adress", "Hej, vi har en ny "
                        "domän. Bokningen visar fel.", message_id))
    number = web_maild.ticket_of(message_id)
    assert web_maild.daemon.query(f"SELECT customer FROM ticket WHERE number = '{number}'") == [
        ("bergstroms-bygg",)]

    # an edit that breaks the rules is refused and nothing is written
    form = page.locator("tr#lindqvist-logistik form.add-domain")
    form.locator("input[name=domain]").fill("bergstromsbygg.se")  # owned by another customer
    form.locator("button").click()
    page.wait_for_selector("#refused")
    assert "bergstromsbygg.se" not in (web_maild.rules / "customers" /
                                       "lindqvist-logistik.toml").read_text(encoding="utf-8")


XSS = "<script>window.__xss=1;alert('x')</script><img src=x onerror=\"window.__xss=1\">"


def test_script_in_a_mail_never_runs_in_the_ticket_page(web_maild: WebMaild,
                                                         browser: Any) -> None:
    message = EmailMessage()
    message["From"] = f'"{XSS}" <anna.lind@bergstromsbygg.se>'
    message["To"] = "support@example.se"
    message["Subject"] = f"Fel {XSS}"
    message_id = make_msgid(domain="bergstromsbygg.se")[1:-1]
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(f"Texten {XSS} slut")
    message.add_alternative(f"<html><body><p>HTML {XSS}</p><iframe src=\"javascript:"
                            f"window.__xss=1\"></iframe></body></html>", subtype="html")
    message.add_attachment(b"<script>alert(1)</script>", maintype="text", subtype="html",
                           filename=f"{XSS}.html")
    web_maild.send(message)
    number = web_maild.ticket_of(message_id)
    page = log_in(browser, web_maild.base, "root")
    page.goto(f"{web_maild.base}/tickets/{number}")
    page.wait_for_selector(".conversation")
    page.goto(f"{web_maild.base}/tickets?closed=1")
    page.goto(f"{web_maild.base}/tickets/{number}")
    assert page.dialogs == []
    assert page.evaluate("window.__xss") is None
    assert page.locator("script").count() == 1  # maild.js only
    assert page.locator("[onerror], iframe").count() == 0
    assert "<script>window.__xss=1" in page.locator("#ticket-subject").inner_text()
    # the attachment downloads with its original bytes, never rendered
    href = page.locator(".attachments a").first.get_attribute("href")
    response = page.request.get(f"{web_maild.base}{href}")
    assert response.body() == b"<script>alert(1)</script>"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")


def test_screenshots_in_the_readme_exist() -> None:
    for name in ("web-queues.png", "web-ticket.png"):
        assert (ROOT / "docs" / name).is_file(), f"run docs/make-screenshots to make {name}"


def _authenticated(message: EmailMessage) -> EmailMessage:
    """`message` as the organisation's MTA passes it on: DMARC pass for its From."""
    for name, value in authenticated_headers(str(message["From"])):
        message[name] = value
    return message


def test_an_agent_changes_the_priority_and_sees_the_deadline_follow(
        web_maild: WebMaild, browser: Any) -> None:
    message_id = make_msgid(domain="bergstromsbygg.se")[1:-1]
    web_maild.send(_authenticated(mail(
        "Anna Lind <anna.lind@bergstromsbygg.se>", "Fel pris i kassan",
        "Hej!\n\nKassan visar fel pris för rabatterade rum sedan i går.\n\nAnna", message_id)))
    number = web_maild.ticket_of(message_id)
    page = log_in(browser, web_maild.base, "agnes")
    page.goto(f"{web_maild.base}/tickets/{number}")
    assert page.locator("#priority").inner_text() == "Normal"
    before = page.locator("#response-due").inner_text()
    page.select_option("#priority-form select[name=level]", "High")
    page.fill("#priority-form input[name=reason]", "Kassan är helt utslagen för alla kunder")
    page.click("#priority-form button[type=submit]")
    page.wait_for_selector("#done")
    assert page.locator("#priority").inner_text() == "High"
    after = page.locator("#response-due").inner_text()
    assert after and after != before, (before, after)
    assert "Kassan är helt utslagen" in page.locator("#events").inner_text()


def test_an_unentitled_sender_is_found_by_the_filter_and_entitled_by_an_agent(
        web_maild: WebMaild, browser: Any) -> None:
    message_id = make_msgid(domain="bergstromsbygg.se")[1:-1]
    # Not authenticated by the organisation's MTA: a ticket, but no commitment yet.
    web_maild.send(mail("Anna Lind <anna.lind@bergstromsbygg.se>", "Bilderna laddas inte",
                        "Hej!\n\nBilderna på startsidan laddas inte sedan i morse.\n\nAnna",
                        message_id))
    number = web_maild.ticket_of(message_id)
    page = log_in(browser, web_maild.base, "agnes")
    page.goto(f"{web_maild.base}/tickets?not_entitled=1")
    assert page.locator(f"td.number a:text-is('{number}')").count() == 1
    page.goto(f"{web_maild.base}/tickets/{number}")
    assert page.locator("#response-due").inner_text() in ("ingen", "none")
    page.fill("#entitle-form input[name=reason]", "Ringt Anna, hon skickade mejlet")
    page.click("#entitle-form button[type=submit]")
    page.wait_for_selector("#done")
    assert page.locator("#response-due").inner_text() not in ("ingen", "none", "")
    assert page.locator("#entitle-form").count() == 0
    page.goto(f"{web_maild.base}/tickets?not_entitled=1")
    assert page.locator(f"td.number a:text-is('{number}')").count() == 0
