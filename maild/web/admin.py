"""The administrators' pages: customers and their safe edits, the explain tester, rules check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from tomlkit import TOMLDocument

from maild.envelope import Envelope, identity_of
from maild.models import utcnow
from maild.parse import UnparseableMail, parse_mail
from maild.pipeline import decide
from maild.routing.load import RulesError, load_rules, valid_address
from maild.tickets.correlate import NoTickets
from maild.web import rules_edit
from maild.web.app import WebContext, form_of, render, require

EXPLAIN_KEYS = ("kind", "sender", "sender_domain", "private", "support_address", "customer",
                "customer_name", "customer_status", "policy", "queue", "priority",
                "priority_reason", "language", "route_reason", "signal", "ack", "ack_reason",
                "rules_version")


def _web(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


def _rules_check(web: WebContext) -> list[str]:
    """The problems `maild rules check` reports for the directory as it is now (none: ok)."""
    try:
        load_rules(web.config.rules_dir)
    except RulesError as error:
        return [str(problem) for problem in error.problems]
    return []


async def customers_page(request: Request) -> Response:
    """Customers with domains, contacts, policy and status; the rules check; recent changes."""
    visitor = await require(request, admin=True)
    web = _web(request)
    problems = await asyncio.to_thread(_rules_check, web)
    changes = await asyncio.to_thread(rules_edit.recent_changes, web.engine)
    rules = web.rules()
    return render(request, "admin.html", visitor, rules=rules, problems=problems,
                  changes=changes, done=request.query_params.get("done", ""),
                  refused=request.query_params.get("refused", ""))


Change = Callable[[TOMLDocument], str]
EDITS: dict[str, Callable[[dict[str, str]], Change]] = {
    "add-domain": lambda form: partial(rules_edit.add_domain, domain=form.get("domain", "")),
    "remove-domain": lambda form: partial(rules_edit.remove_domain,
                                          domain=form.get("domain", "")),
    "add-contact": lambda form: partial(rules_edit.add_contact,
                                        address=form.get("address", ""),
                                        name=form.get("name", ""), title=form.get("title", "")),
    "remove-contact": lambda form: partial(rules_edit.remove_contact,
                                           address=form.get("address", "")),
    "suspend": lambda form: partial(rules_edit.set_status, status="suspended"),
    "reactivate": lambda form: partial(rules_edit.set_status, status="active"),
}


async def customer_edit(request: Request) -> Response:
    """POST /admin/customers/ID/ACTION: one safe edit of the customer's file."""
    visitor = await require(request, admin=True)
    web = _web(request)
    action = request.path_params["action"]
    if action not in EDITS:
        raise HTTPException(404)
    form = await form_of(request, visitor)
    customer = request.path_params["customer"]
    try:
        value = await asyncio.to_thread(
            rules_edit.edit_customer, web.engine, web.config.rules_dir, customer, action,
            EDITS[action](form), actor=f"web {visitor.person.name}")
    except rules_edit.EditRefused as refused:
        return RedirectResponse(f"/admin?refused={quote(str(refused))}#{quote(customer)}", 303)
    if web.reload_rules is not None:
        await web.reload_rules()
    return RedirectResponse(
        f"/admin?done={quote(f'{customer}: {action} {value}')}#{quote(customer)}", 303)


def _explain(web: WebContext, address: str, to: str, raw: str) -> dict[str, Any]:
    """What `maild rules explain` (an address) or `maild route` (a whole mail) would decide."""
    rules = web.rules()
    target = to or rules.default_address.address
    if rules.support_address(target) is None:
        return {"error": f"maild does not serve {target}"}
    if raw.strip():
        data = raw.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8", "replace")
    else:
        if not valid_address(address):
            return {"error": f"'{address}' is not an e-mail address"}
        from maild.commands.rules import _synthetic_message

        # as `maild rules explain`: genuine mail from the address, as the trusted MTA passes it on
        data = _synthetic_message(address, target, "", min(rules.trust.authserv_ids, default=None))
    try:
        mail = parse_mail(data)
    except UnparseableMail as error:
        return {"error": f"the mail cannot be read: {error}"}
    sender = address or (mail.sender.address if mail.sender else None)
    envelope = Envelope(sender=sender, recipients=(target,), received_at=utcnow())
    decision = decide(mail, envelope, rules, lookup=NoTickets(), numbering=web.numbering,
                      identity=identity_of(rules, web.config.mail_domain))
    record = decision.to_json()
    return {"facts": [(key, record.get(key)) for key in EXPLAIN_KEYS if key in record],
            "rules_tried": record.get("rules_tried") or []}


async def explain_page(request: Request) -> Response:
    """The tester: which customer, policy, queue and priority an address or a mail gets."""
    visitor = await require(request, admin=True)
    web = _web(request)
    result: dict[str, Any] | None = None
    values = {"address": "", "to": "", "raw": ""}
    if request.method == "POST":
        form = await form_of(request, visitor)
        values = {key: form.get(key, "").strip() if key != "raw" else form.get(key, "")
                  for key in values}
        result = await asyncio.to_thread(_explain, web, values["address"], values["to"],
                                         values["raw"])
    return render(request, "explain.html", visitor, result=result, values=values,
                  addresses=[a.address for a in web.rules().addresses])


def routes() -> list[Route]:
    """The administrators' routes."""
    return [
        Route("/admin", customers_page),
        Route("/admin/explain", explain_page, methods=["GET", "POST"]),
        Route("/admin/customers/{customer}/{action}", customer_edit, methods=["POST"]),
    ]
