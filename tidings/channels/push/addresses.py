"""Which push-service URLs a device may name. A web push endpoint and a WNS channel URI come from the
user's app, so they must not aim Tidings at an address it was not configured for: each provider's own
rule decides (https, a well-known push service or an allowed host). An app without that provider's block
is served by the sandbox, which never connects, so any absolute http(s) URL does."""

from urllib.parse import urlsplit

from tidings.apps import App


def endpoint_problem(app: App, provider: str, url: str) -> str | None:
    """Why `url` may not be this app's `provider` endpoint, or None."""
    if provider == "webpush" and app.webpush is not None:
        from tidings.channels.push.webpush import endpoint_problem as webpush_problem

        return webpush_problem(url, app.webpush)
    if provider == "wns" and app.wns is not None:
        from tidings.channels.push.wns import channel_uri_problem

        return channel_uri_problem(url, app.wns)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    return None
