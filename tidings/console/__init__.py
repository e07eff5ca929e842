"""The web console at /console: server-rendered pages with a little JS, served by Tidings itself.

`routes()` gives the application its routes; the pages are `pages.py` (sign-in, the log, a message,
sending a test, stats, health), live updates `live.py`, the session and CSRF `session.py`, per-channel
previews `previews.py` (a channel registers its own), and the CSS and JS files `static/`, read with
importlib.resources so they ship inside the package. See docs/console.md.
"""

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tidings.console import live, pages

STATIC_TYPES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
_STATIC: dict[str, bytes] = {}


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC_TYPES:
        return Response(status_code=404)
    if name not in _STATIC:
        _STATIC[name] = resources.files("tidings.console").joinpath("static", name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(_STATIC[name], media_type=STATIC_TYPES[name], headers=headers)


def routes() -> list[Route]:
    return [
        Route("/console", pages.home, methods=["GET"]),
        Route("/console/login", pages.login, methods=["GET", "POST"]),
        Route("/console/logout", pages.logout, methods=["POST"]),
        Route("/console/messages", pages.messages, methods=["GET"]),
        Route("/console/messages/{transid}", pages.message, methods=["GET"]),
        Route("/console/messages/{transid}/resend", pages.resend, methods=["POST"]),
        Route("/console/events", live.events, methods=["GET"]),
        Route("/console/send", pages.send, methods=["GET", "POST"]),
        Route("/console/stats", pages.stats, methods=["GET"]),
        Route("/console/health", pages.health, methods=["GET"]),
        Route("/console/health/forget", pages.forget, methods=["POST"]),
        Route("/console/static/{name}", static, methods=["GET"]),
    ]
