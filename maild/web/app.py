"""The web application: routes, security headers, and how a request finds its person.

Every route that touches the database hands the work to a thread, so the
daemon's event loop never waits on it. Pages are Jinja2 templates with
autoescaping; no inline script or style exists, so the Content-Security-Policy
allows scripts and styles only from /static.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from maild.commands.common import readable
from maild.config import Config
from maild.log import get_logger
from maild.respond.wording import LOCAL_ZONE
from maild.routing.model import Rules
from maild.tickets.numbering import TicketNumbering
from maild.web import auth
from maild.web.i18n import translator

log = get_logger("maild.web")
HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass
class WebContext:
    """What the web needs from the daemon: database, current rules, and hooks."""

    config: Config
    engine: Engine
    rules: Callable[[], Rules]
    numbering: TicketNumbering
    domain: str
    outbox_added: Callable[[], None] = lambda: None
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None
    metrics: Callable[[], Awaitable[bytes]] | None = None
    reload_rules: Callable[[], Awaitable[bool]] | None = None


class SecurityHeaders(BaseHTTPMiddleware):
    """Strict CSP and friends on every response; pages are never cached."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def local(moment: Any) -> str:
    """A time in Swedish local time as `2026-11-30 14:05`."""
    if moment is None:
        return ""
    return str(moment.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M"))


def duration(delta: Any) -> str:
    """A time span as `3 h 05 min` (negative: `-1 h 10 min`)."""
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else ""
    minutes = abs(minutes)
    return f"{sign}{minutes // 60} h {minutes % 60:02d} min"


templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"),
                                            autoescape=True))
templates.env.filters["local"] = local
templates.env.filters["duration"] = duration
templates.env.filters["readable"] = readable


def language_of(request: Request, visitor: auth.Visitor | None) -> str:
    """The page language: the visitor's choice in a cookie, their setting, or Swedish."""
    chosen = request.cookies.get("maild_lang")
    if chosen in ("sv", "en"):
        return chosen
    return visitor.person.language if visitor else "sv"


def render(request: Request, name: str, visitor: auth.Visitor | None, status: int = 200,
           **values: Any) -> Response:
    """A page from template `name` with the visitor, their CSRF token and words."""
    language = language_of(request, visitor)
    response: Response = templates.TemplateResponse(request, name, {
        "visitor": visitor, "person": visitor.person if visitor else None,
        "csrf": visitor.csrf if visitor else "", "t": translator(language), "lang": language,
        **values}, status_code=status)
    return response


def client_address(request: Request) -> str:
    """The peer's IP address (the proxy's, when behind one)."""
    return request.client.host if request.client else "unknown"


async def visitor_of(request: Request) -> auth.Visitor | None:
    """The logged-in visitor, from the session cookie or the trusted SSO header."""
    web: WebContext = request.app.state.web
    found = await asyncio.to_thread(auth.lookup, web.engine, request.cookies.get(auth.COOKIE),
                                    auth.now())
    header = web.config.http_sso_header
    if header and client_address(request) in web.config.http_trusted_proxies:
        named = request.headers.get(header)
        if named and (found is None or found.person.name != named):
            person = await asyncio.to_thread(auth.sso_person, web.engine, named)
            if person is None:
                log.warning("web.sso_unknown_user", user=named)
                raise HTTPException(403, "sso_unknown")
            token = await asyncio.to_thread(auth.start_session, web.engine, person.name,
                                            web.config.http_session_hours, auth.now())
            request.state.new_session = token
            found = await asyncio.to_thread(auth.lookup, web.engine, token, auth.now())
    return found


async def require(request: Request, admin: bool = False) -> auth.Visitor:
    """The visitor, or a redirect to the log-in page; 403 when admin rights are needed."""
    visitor = await visitor_of(request)
    if visitor is None:
        raise HTTPException(303, headers={"Location": "/login"})
    if admin and not visitor.person.is_admin:
        raise HTTPException(403, "admins_only")
    return visitor


async def form_of(request: Request, visitor: auth.Visitor) -> dict[str, str]:
    """The posted form, after its CSRF token is checked (403 when it is wrong)."""
    form = await request.form()
    if not auth.csrf_ok(visitor.csrf, form.get("csrf")):
        raise HTTPException(403, "form_expired")
    return {key: value for key, value in form.items() if isinstance(value, str)}


def set_session_cookie(request: Request, response: Response, token: str, hours: float) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure when served over https."""
    response.set_cookie(auth.COOKIE, token, max_age=int(hours * 3600), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")


async def error_page(request: Request, exc: Exception) -> Response:
    """403/404/… as a page in the visitor's language; redirects pass through."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (302, 303):
        return RedirectResponse(exc.headers["Location"] if exc.headers else "/", exc.status_code)
    try:
        visitor = await visitor_of(request)
    except HTTPException:
        visitor = None
    t = translator(language_of(request, visitor))
    message = t(exc.detail)  # the views raise with a word key; anything else shows as is
    if exc.status_code == 404:
        message = t("not_found")
    elif exc.status_code == 403 and (exc.detail == "Forbidden" or "not one of yours" in
                                     exc.detail):
        message = t("forbidden")
    return render(request, "error.html", visitor, status=exc.status_code, message=message)


class NewSessionCookie(BaseHTTPMiddleware):
    """Sets the cookie of a session started from the SSO header during the request."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        token = getattr(request.state, "new_session", None)
        if token:
            web: WebContext = request.app.state.web
            set_session_cookie(request, response, token, web.config.http_session_hours)
        return response


def build_app(web: WebContext) -> Starlette:
    """The Starlette application for `web`."""
    from maild.web import admin, operations, views

    routes = [
        *views.routes(),
        *admin.routes(),
        *operations.routes(),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        Route("/", views.home),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: error_page},
                    middleware=[Middleware(SecurityHeaders), Middleware(NewSessionCookie)])
    app.state.web = web
    return app
