"""`GET /metrics`: the Prometheus text format (see `metrics.py` for what it holds and why)."""

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from tidings.observe.metrics import METRICS


async def metrics_endpoint(request: Request) -> Response:
    body = await METRICS.scrape(request.app.state.runtime)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
