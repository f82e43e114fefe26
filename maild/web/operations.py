"""The operator's endpoints: /metrics (Prometheus text format) and /healthz."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from maild.web.app import WebContext


async def metrics(request: Request) -> Response:
    """Prometheus metrics of this maild and its database."""
    web: WebContext = request.app.state.web
    if web.metrics is None:
        return Response("metrics are served by the daemon\n", 404, media_type="text/plain")
    body = await web.metrics()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def healthz(request: Request) -> Response:
    """200 when the database answers and every worker runs, else 503 with what is wrong."""
    web: WebContext = request.app.state.web
    if web.health is None:
        return JSONResponse({"status": "ok"})
    report = await web.health()
    return JSONResponse(report, status_code=200 if report.get("status") == "ok" else 503)


def routes() -> list[Route]:
    """The operator's routes (no log-in: keep the listener on loopback or behind a proxy)."""
    return [Route("/metrics", metrics), Route("/healthz", healthz)]
