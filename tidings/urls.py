"""URL checks shared by the config, the request schemas and the notifier.

They live apart from the config so that code below the composition root need not import it.
"""

from urllib.parse import urlsplit


def is_http_url(url: str) -> bool:
    """True for a syntactically valid absolute http(s) URL with no stray whitespace."""
    if not url or url != url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
