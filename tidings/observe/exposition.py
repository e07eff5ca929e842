"""`GET /metrics`: the Prometheus text format (see `metrics.py` for what it holds and why), on the API's
port, or on a port of its own for `tidings worker`."""

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from tidings.observe.metrics import METRICS

if TYPE_CHECKING:
    from tidings.runtime import Runtime


async def metrics_endpoint(request: Request) -> Response:
    body = await METRICS.scrape(request.app.state.runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@contextlib.asynccontextmanager
async def metrics_server(runtime: "Runtime", host: str, port: int) -> AsyncIterator[None]:
    """`tidings worker --metrics-port`: `GET /metrics` on an HTTP port of its own (a worker serves no
    API), for as long as the block runs."""

    async def handler(request: web.Request) -> web.Response:
        body = await METRICS.scrape(runtime)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise MetricsPortUnavailable(f"cannot listen on {host}:{port} for /metrics: {exc.strerror}") from None
    try:
        yield
    finally:
        await runner.cleanup()


class MetricsPortUnavailable(Exception):
    """The worker's metrics port could not be bound."""
