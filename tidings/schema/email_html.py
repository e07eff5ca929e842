"""What email does to a body before it is stored: click tracking (links rewritten to the tracking
endpoint), the open pixel, and the text part generated from an HTML body.

Done at accept, once per message, so that the links a redirect may go to are recorded with the message
(CONTRACT.md "Email": redirects only to URLs recorded at send time) and the stored content is what goes
out.
"""

import html
import re
from collections.abc import Callable
from html.parser import HTMLParser

# An <a> or <area> tag and its href (quoted either way). A tag with the attribute `no-track-connect`
# (Webex Connect's opt-out) keeps its link.
_TAG = re.compile(r"<(?:a|area)\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_NO_TRACK = re.compile(r"\bno-track-connect\b", re.IGNORECASE)
# A URL in plain text; trailing punctuation belongs to the sentence, not the link.
_TEXT_URL = re.compile(r"""https?://[^\s<>"'()\[\]{}]+""", re.IGNORECASE)
_TRAILING = ".,;:!?"
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

Rewrite = Callable[[str], str]  # an http(s) URL -> the tracking URL that redirects to it


def is_trackable(url: str) -> bool:
    return url[:8].lower().startswith(("http://", "https://")) and len(url) > 8


def rewrite_html_links(body: str, rewrite: Rewrite) -> str:
    """Every http(s) href of an <a>/<area> tag replaced by `rewrite(url)`; mailto:, tel:, anchors and
    tags marked no-track-connect are left alone."""

    def tag(m: re.Match[str]) -> str:
        text = m.group(0)
        if _NO_TRACK.search(text):
            return text

        def href(h: re.Match[str]) -> str:
            raw = h.group(2) if h.group(2) is not None else h.group(3)
            url = html.unescape(raw).strip()
            if not is_trackable(url):
                return h.group(0)
            return f'{h.group(1)}"{html.escape(rewrite(url), quote=True)}"'

        return _HREF.sub(href, text, count=1)

    return _TAG.sub(tag, body)


def rewrite_text_links(body: str, rewrite: Rewrite) -> str:
    """Every http(s) URL of a plain-text body replaced by `rewrite(url)`."""

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        kept = len(url.rstrip(_TRAILING))
        return rewrite(url[:kept]) + url[kept:]

    return _TEXT_URL.sub(one, body)


def add_pixel(body: str, src: str) -> str:
    """A 1x1 image at the end of the body (before </body> when there is one)."""
    img = (
        f'<img src="{html.escape(src, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px" />'
    )
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return body + img
    at = ends[-1].start()
    return body[:at] + img + body[at:]


_BLOCKS = frozenset(
    {"p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol", "blockquote", "pre"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "hr"}
)
_SKIP = frozenset(("script", "style", "head", "title"))


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.href: list[str | None] = []
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCKS:
            self.out.append("\n\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_text.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.out.append("\n\n")
        elif tag == "a" and self.href:
            href, label = self.href.pop(), self.link_text.pop().strip()
            if href and is_trackable(href) and href != label:
                self.out.append(f" ({href})" if label else href)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.link_text:
            self.link_text[-1] += data
        self.out.append(data)


_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")


def html_to_text(body: str) -> str:
    """A readable plain-text rendering of an HTML body: paragraphs and line breaks kept, links written
    as `label (url)`, scripts, styles and images dropped."""
    parser = _Text()
    parser.feed(body)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.out))
    lines = (line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"
