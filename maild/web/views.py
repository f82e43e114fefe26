"""The agents' pages: log-in, queue overview, ticket list, ticket page and its actions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import quote

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from maild.log import get_logger
from maild.models import TicketStatus
from maild.tickets import actions
from maild.web import auth
from maild.web.app import (
    WebContext,
    client_address,
    form_of,
    render,
    require,
    set_session_cookie,
    visitor_of,
)
from maild.web.tickets import (
    Filters,
    NotAllowed,
    NotFound,
    attachment,
    not_entitled,
    queue_counts,
    ticket_detail,
    ticket_for_action,
    ticket_list,
    visible_queues,
)
from maild.web.users import Person

log = get_logger("maild.web")
LOGIN_CSRF = "maild_login_csrf"


def _web(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


async def login_page(request: Request) -> Response:
    """The log-in form, with a CSRF token bound to a cookie of its own."""
    import secrets

    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_csrf=token,
                      error=request.query_params.get("error", ""))
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")
    return response


async def login(request: Request) -> Response:
    """Check name and password; on success start a session and go to the queues."""
    web = _web(request)
    form = await request.form()
    expected = request.cookies.get(LOGIN_CSRF) or ""
    if not expected or not auth.csrf_ok(expected, form.get("csrf")):
        raise HTTPException(403, "form_expired")
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    try:
        person = await asyncio.to_thread(auth.log_in, web.engine, name, password,
                                         client_address(request), auth.now())
    except auth.TooManyAttempts:
        return RedirectResponse("/login?error=login_throttled", 303)
    if person is None:
        return RedirectResponse("/login?error=login_failed", 303)
    token = await asyncio.to_thread(auth.start_session, web.engine, person.name,
                                    web.config.http_session_hours, auth.now())
    response = RedirectResponse("/queues", 303)
    set_session_cookie(request, response, token, web.config.http_session_hours)
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


async def logout(request: Request) -> Response:
    """End the session."""
    visitor = await require(request)
    await form_of(request, visitor)
    await asyncio.to_thread(auth.end_session, _web(request).engine,
                            request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


async def language(request: Request) -> Response:
    """Switch the page language (sv/en), remembered in a cookie."""
    visitor = await require(request)
    form = await form_of(request, visitor)
    chosen = "en" if form.get("lang") == "en" else "sv"
    back = form.get("back") or "/queues"
    response = RedirectResponse(back if back.startswith("/") and not back.startswith("//")
                                else "/queues", 303)
    response.set_cookie("maild_lang", chosen, max_age=365 * 86400, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


async def queues_page(request: Request) -> Response:
    """Per queue: new, open, waiting on customer, overdue, due today (updates by itself)."""
    visitor = await require(request)
    web = _web(request)
    rows = await asyncio.to_thread(queue_counts, web.engine, visitor.person, web.rules(),
                                   auth.now())
    return render(request, "queues.html", visitor, rows=rows)


async def queues_json(request: Request) -> Response:
    """The queue counts as JSON, for the overview's short poll."""
    visitor = await require(request)
    web = _web(request)
    rows = await asyncio.to_thread(queue_counts, web.engine, visitor.person, web.rules(),
                                   auth.now())
    return JSONResponse(rows)


def _filters(request: Request) -> Filters:
    query = request.query_params
    return Filters(queue=query.get("queue", ""), status=query.get("status", ""),
                   priority=query.get("priority", ""), customer=query.get("customer", ""),
                   overdue=query.get("overdue") == "1", missing=query.get("missing") == "1",
                   private=query.get("private") == "1",
                   not_entitled=query.get("not_entitled") == "1",
                   include_closed=query.get("closed") == "1")


async def tickets_page(request: Request) -> Response:
    """The ticket list with filters, soonest response deadline first."""
    visitor = await require(request)
    web = _web(request)
    rules = web.rules()
    filters = _filters(request)
    if filters.queue and not visitor.person.may_see(filters.queue):
        raise HTTPException(403, "not_your_queue")
    page = await asyncio.to_thread(ticket_list, web.engine, visitor.person, rules, filters,
                                   auth.now())
    priorities = sorted({level for policy in rules.policies.values()
                         for level in policy.priorities})
    return render(request, "tickets.html", visitor, page=page, filters=filters,
                  queues=visible_queues(visitor.person, rules), statuses=TicketStatus.ALL,
                  priorities=priorities, customers=sorted(rules.customers), now=auth.now(),
                  not_entitled=not_entitled)


async def ticket_page(request: Request) -> Response:
    """One ticket: conversation, attachments, decision record, SLA clock, trail, actions."""
    visitor = await require(request)
    web = _web(request)
    number = request.path_params["number"]
    try:
        detail = await asyncio.to_thread(ticket_detail, web.engine, visitor.person, web.rules(),
                                         number, auth.now())
    except NotAllowed as refused:
        log.warning("web.ticket_refused", user=visitor.person.name, ticket=number,
                    reason=str(refused))
        raise HTTPException(403, str(refused)) from None
    except NotFound:
        raise HTTPException(404) from None
    policy = web.rules().policies.get(detail.ticket.policy or "")
    held = (detail.ticket.decision or {}).get("entitlement") or {}
    return render(request, "ticket.html", visitor, d=detail, ticket=detail.ticket,
                  levels=list(policy.priorities) if policy else [],
                  review_required=bool(policy and detail.ticket.priority in
                                       policy.review_required),
                  entitlable=held.get("committed") is False
                  and detail.ticket.response_due is None,
                  done=request.query_params.get("done", ""),
                  refused=request.query_params.get("refused", ""))


async def attachment_download(request: Request) -> Response:
    """An attachment's original bytes, always as a download, never shown inline."""
    visitor = await require(request)
    web = _web(request)
    try:
        name, data = await asyncio.to_thread(
            attachment, web.engine, visitor.person, request.path_params["number"],
            request.path_params["message"], request.path_params["index"])
    except NotAllowed:
        raise HTTPException(403) from None
    except NotFound:
        raise HTTPException(404) from None
    ascii_name = "".join(ch if ch.isascii() and ch not in '"\\;' else "_" for ch in name)
    return Response(data, media_type="application/octet-stream", headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(name)}"})


def _act(person: Person, web: WebContext, number: str, action: str,
         form: dict[str, str]) -> str:
    """Apply one action through the ticket service; returns the ticket's number."""
    now = auth.now()
    actor = f"web {person.name}"
    with Session(web.engine) as session:
        ticket = ticket_for_action(session, person, number)
        doing: dict[str, Callable[[], object]] = {
            "assign": lambda: actions.assign(session, ticket, form.get("who", ""),
                                             actor=actor, now=now),
            "note": lambda: actions.note(session, ticket, form.get("text", ""), actor=actor,
                                         now=now),
            "close": lambda: actions.close(session, ticket, form.get("resolution", ""),
                                           actor=actor, now=now, rules=web.rules(),
                                           review=form.get("review") or None),
            "priority": lambda: actions.prioritise(session, ticket, form.get("level", ""),
                                                   reason=form.get("reason", ""), actor=actor,
                                                   now=now, rules=web.rules()),
            "entitle": lambda: actions.entitle(session, ticket, reason=form.get("reason", ""),
                                               actor=actor, now=now, rules=web.rules()),
            "reopen": lambda: actions.reopen(session, ticket, form.get("reason", ""),
                                             actor=actor, now=now),
            "reply": lambda: actions.reply(session, ticket, form.get("text", ""), actor=actor,
                                           rules=web.rules(), numbering=web.numbering,
                                           domain=web.domain, now=now),
        }
        doing[action]()
        session.commit()
        log.info("web.ticket_action", user=person.name, ticket=ticket.number, action=action)
        return ticket.number


ACTIONS = ("assign", "note", "close", "reopen", "reply", "priority", "entitle")


async def ticket_action(request: Request) -> Response:
    """POST /tickets/NUMBER/ACTION: assign, note, close, reopen, reply, priority or entitle."""
    visitor = await require(request)
    web = _web(request)
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise HTTPException(404)
    form = await form_of(request, visitor)
    number = request.path_params["number"]
    try:
        number = await asyncio.to_thread(_act, visitor.person, web, number, action, form)
    except NotAllowed:
        raise HTTPException(403) from None
    except NotFound:
        raise HTTPException(404) from None
    except actions.ActionRefused as refused:
        return RedirectResponse(f"/tickets/{quote(number)}?refused={quote(str(refused))}", 303)
    if action == "reply":
        web.outbox_added()
    return RedirectResponse(f"/tickets/{quote(number)}?done={action}", 303)


async def home(request: Request) -> Response:
    """The start page: the queues (or the log-in page)."""
    visitor = await visitor_of(request)
    return RedirectResponse("/queues" if visitor else "/login", 303)


def routes() -> list[Route]:
    """The agents' routes."""
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/language", language, methods=["POST"]),
        Route("/queues", queues_page),
        Route("/queues.json", queues_json),
        Route("/tickets", tickets_page),
        Route("/tickets/{number}", ticket_page),
        Route("/tickets/{number}/messages/{message:int}/attachments/{index:int}",
              attachment_download),
        Route("/tickets/{number}/{action}", ticket_action, methods=["POST"]),
    ]
