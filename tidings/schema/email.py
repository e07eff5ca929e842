"""Email over v2 (`POST /v2/messages` with `channel: "email"`): the content stored and sent
(`EmailContent`), and the channel's part of a v2 request (`EmailV2`, a `V2Channel`).

The request (CONTRACT.md "Email", Webex Connect's email API):
    from                  an address of the service's `email_from` (an address, or any address of an
                          `@domain` entry), else 7004 naming `from`
    content.type          text | html (any case); 7003 when absent
    content.subject       7003 when absent; substitutions apply; no line breaks
    content.text          the body of a text email (7003 when absent); with type html, the text
                          alternative (generated from the HTML when absent)
    content.html          the body of an html email (7003 when absent)
    content.replyTo       an address (Reply-To)
    content.encoding      the charset the bodies are sent in (utf-8 when absent; any charset Python
                          knows, e.g. iso-8859-1; 7004 when a body does not fit it)
    options.fromName      the display name of From
    options.trackOpens    an open pixel in the HTML (a text email has no pixel: Read needs HTML)
    options.trackClicks   every http(s) link of the HTML (or of a text body) goes through the tracker
    cc, bcc               addresses, 50 at most between them (with the `to[]` entry, as Webex Connect
                          caps recipients of one email); Bcc is never a header
    multipleToRecipients  true: each message's To header lists every address of its `to[]` entry, as
                          one email to all of them, and cc/bcc get only the entry's first message.
                          Each address is still a message of its own (its messageId, status, tracking
                          and bounce). Absent/false: each address gets its own email, cc and bcc
                          copied on every one (Webex Connect's documented default).
Substitutions (`{{name}}` or `$(name)`) fill the subject and the bodies; one without a value is left as
written. Values put into HTML are HTML-escaped. Every refusal names its field (`content.subject`,
`cc[1]`, `options.trackOpens`).
"""

import codecs
import functools
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec

from tidings.errors import InvalidParameter, MandatoryMissing
from tidings.schema.common import ChannelContent
from tidings.schema.email_html import (
    add_pixel,
    html_to_text,
    rewrite_html_links,
    rewrite_text_links,
)
from tidings.store.base import NewLink

if TYPE_CHECKING:  # the v2 seam imports services, whose config imports the channels, which import specs
    from tidings.schema.v2_channel import V2Destination, V2Message, V2Parts
    from tidings.services import Service

ADDRESS_MAX = 254  # RFC 5321's path limit, less the brackets
LOCAL_MAX = 64
SUBJECT_MAX_CHARS = 998  # one header line, RFC 5322 §2.1.1
FROM_NAME_MAX_CHARS = 256
COPIES_MAX = 50  # cc + bcc
TYPES = ("text", "html")
TEXTS_KEPT = 64  # generated text parts a request keeps (one when substitutions leave the HTML alone)

# Email link records (the links table; email-back's /t/ endpoints read them): the open pixel, a
# tracked click, the one-click unsubscribe of a bulk send.
OPEN_LINKID = -1
CLICK_LINKID = -2
UNSUBSCRIBE_LINKID = -3

# Printable ASCII but space and the specials ()<>[]:;@\\," (RFC 5322 atext, and the dots)
_ATOM_TEXT = re.compile(r"[!#-'*+\-./0-9=?A-Z^-~]+")


class EmailContent(msgspec.Struct, kw_only=True, omit_defaults=True, rename={"sender": "from"}):
    """An email as stored and as the SMTP connector receives it: substitutions applied, links
    rewritten, the text part decided."""

    sender: str  # `from`
    subject: str
    type: str  # text | html
    text: str  # the text body, or an HTML email's text alternative
    html: str = ""
    fromName: str = ""
    replyTo: str = ""
    to: list[str] = msgspec.field(default_factory=list)  # the To header (multipleToRecipients)
    cc: list[str] = msgspec.field(default_factory=list)
    bcc: list[str] = msgspec.field(default_factory=list)  # envelope only
    encoding: str = "utf-8"
    trackOpens: bool = False
    trackClicks: bool = False
    unsubscribe: str = ""  # the one-click unsubscribe URL (bulk sends: List-Unsubscribe)
    # cc and bcc are envelope recipients of this message (false on all but the first message of a
    # multipleToRecipients entry, which shows the Cc header all the same)
    copies: bool = True


def email_address(value: object, field: str) -> str:
    """An address (`local@domain`, no display name) checked and normalised: the domain in lower case
    (IDNA for a non-ASCII one), the local part as given. 7004 naming `field`."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter("must be an email address", field=field)
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(text) > ADDRESS_MAX or len(local) > LOCAL_MAX:
        raise InvalidParameter("must be an email address", field=field)
    if not _dot_atom(local):
        raise InvalidParameter("must be an email address (its local part is not valid)", field=field)
    ascii_domain = _domain(domain)
    if ascii_domain is None:
        raise InvalidParameter("must be an email address (its domain is not valid)", field=field)
    return f"{local}@{ascii_domain}"


@functools.lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """A domain in lower case ASCII (IDNA), None when it is not one; cached, as a bulk request's
    addresses share a few domains."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return ascii_domain if is_domain(ascii_domain) else None


def _dot_atom(local: str) -> bool:
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return _ATOM_TEXT.fullmatch(local) is not None


def is_label(text: str) -> bool:
    return 0 < len(text) <= 63 and text.isascii() and text.replace("-", "").isalnum() and text[0] != "-"


def is_domain(text: str) -> bool:
    """A host name of two labels or more (letters, digits, hyphens), as email and DKIM domains are."""
    labels = text.rstrip(".").split(".")
    return len(text) <= 253 and len(labels) >= 2 and all(is_label(label) for label in labels)


def may_send_from(service: "Service", address: str) -> bool:
    """Whether the service may use `address` as From: one of its `email_from` addresses, or an address
    in one of its `@domain` entries (any case)."""
    wanted = address.lower()
    domain = "@" + wanted.rpartition("@")[2]
    return any(entry.lower() in (wanted, domain) for entry in service.email_from)


@dataclass(slots=True)
class _Request:
    """What `check` made of a request, kept for its messages."""

    sender: str
    type: str
    subject: str
    text: str | None
    html: str | None
    reply_to: str
    encoding: str
    from_name: str
    track_opens: bool
    track_clicks: bool
    cc: list[str]
    bcc: list[str]
    group_to: bool
    # An HTML body's generated text part by the (substituted) HTML: made once per request when the
    # destinations' substitutions do not change the HTML.
    texts: dict[str, str] = field(default_factory=dict)


class EmailV2:
    """The email channel's part of a v2 request (`tidings.schema.v2_channel.V2Channel`)."""

    address_keys: tuple[str, ...] = ("email",)

    def __init__(self) -> None:
        # The checked request of the last `check`, found again by `message` for each destination (the
        # same V2Parts object); any other parts are checked again.
        self._last: tuple[V2Parts, _Request] | None = None

    def check(self, parts: "V2Parts") -> None:
        self._last = (parts, _decode(parts))

    def address(self, value: object, field: str) -> str:
        return email_address(value, field)

    def message(self, parts: "V2Parts", to: "V2Destination") -> "V2Message":
        from tidings.schema.v2_channel import V2Message

        last = self._last
        req = last[1] if last is not None and last[0] is parts else _decode(parts)
        links: list[NewLink] = []

        def link(linkid: int, target: str | None, track: bool) -> str:
            code = secrets.token_urlsafe(16)
            links.append(
                NewLink(code, parts.service.id, to.transid, linkid, None, to.accepted_at, target, track)
            )
            return code

        values = to.substitutions
        subject = _one_line(_fill(req.subject, values, escape=False))
        body_html = _fill(req.html, values, escape=True) if req.html is not None else ""
        text = _fill(req.text, values, escape=False) if req.text is not None else None
        generated = text is None
        if text is None:  # an HTML email's text part, from its HTML: links as `label (url)`
            text = req.texts.get(body_html)
            if text is None:
                text = html_to_text(body_html)
                if len(req.texts) < TEXTS_KEPT:
                    req.texts[body_html] = text
        if req.track_clicks:
            codes: dict[str, str] = {}

            def rewrite(url: str) -> str:
                if url not in codes:
                    codes[url] = link(CLICK_LINKID, url, True)
                return f"{parts.public_url}/t/c/{codes[url]}"

            body_html = rewrite_html_links(body_html, rewrite) if body_html else ""
            if generated:  # the URLs the HTML tracks, and no other (no-track-connect links stay)
                text = rewrite_text_links(text, lambda url: rewrite(url) if url in codes else url)
            else:
                text = rewrite_text_links(text, rewrite)
        if req.track_opens and req.type == "html":
            body_html = add_pixel(body_html, f"{parts.public_url}/t/o/{link(OPEN_LINKID, None, True)}.gif")
        unsubscribe = ""
        if parts.addresses > 1:  # a bulk send: RFC 8058 one-click unsubscribe
            unsubscribe = f"{parts.public_url}/t/u/{link(UNSUBSCRIBE_LINKID, None, False)}"
        _check_charset(req.encoding, (subject, text, body_html))
        first = not to.group or to.group[0] == to.address
        copies = first or not req.group_to
        content = EmailContent(
            sender=req.sender,
            subject=subject,
            type=req.type,
            text=text,
            html=body_html,
            fromName=req.from_name,
            replyTo=req.reply_to,
            to=list(to.group) if req.group_to and len(to.group) > 1 else [],
            cc=req.cc,
            bcc=req.bcc,
            copies=copies,
            encoding=req.encoding,
            trackOpens=req.track_opens,
            trackClicks=req.track_clicks,
            unsubscribe=unsubscribe,
        )
        return V2Message(ChannelContent(content), links)


def _decode(parts: "V2Parts") -> _Request:
    if not parts.sender:
        raise MandatoryMissing("from is required", field="from")
    sender = email_address(parts.sender, "from")
    if not may_send_from(parts.service, sender):
        raise InvalidParameter("not an email_from address of the service", field="from")
    content, options, extra = parts.content, parts.options, parts.extra
    kind = _string(content.get("type"), "content.type", required=True).lower()
    if kind not in TYPES:
        raise InvalidParameter("must be text or html", field="content.type")
    subject = _string(content.get("subject"), "content.subject", required=True)
    if len(subject) > SUBJECT_MAX_CHARS:
        raise InvalidParameter(f"longer than {SUBJECT_MAX_CHARS} characters", field="content.subject")
    body_html = _optional(content.get("html"), "content.html")
    body_text = _optional(content.get("text"), "content.text")
    if kind == "html" and not body_html:
        raise MandatoryMissing("content.html is required for an html email", field="content.html")
    if kind == "text":
        if not body_text:
            raise MandatoryMissing("content.text is required for a text email", field="content.text")
        body_html = None
    reply_to = content.get("replyTo")
    encoding = _encoding(content.get("encoding"))
    from_name = _optional(options.get("fromName"), "options.fromName") or ""
    if len(from_name) > FROM_NAME_MAX_CHARS or any(c in from_name for c in "\r\n"):
        raise InvalidParameter(
            f"at most {FROM_NAME_MAX_CHARS} characters, on one line", field="options.fromName"
        )
    cc = _addresses(extra.get("cc"), "cc")
    bcc = _addresses(extra.get("bcc"), "bcc")
    if len(cc) + len(bcc) > COPIES_MAX:
        raise InvalidParameter(f"more than {COPIES_MAX} cc and bcc addresses", field="cc")
    return _Request(
        sender=sender,
        type=kind,
        subject=subject,
        text=body_text or None,
        html=body_html,
        reply_to=email_address(reply_to, "content.replyTo") if reply_to not in (None, "") else "",
        encoding=encoding,
        from_name=from_name,
        track_opens=_flag(options.get("trackOpens"), "options.trackOpens"),
        track_clicks=_flag(options.get("trackClicks"), "options.trackClicks"),
        cc=cc,
        bcc=bcc,
        group_to=_flag(extra.get("multipleToRecipients"), "multipleToRecipients"),
    )


def _string(value: object, field: str, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise MandatoryMissing(f"{field} is required", field=field)
        return ""
    if not isinstance(value, str):
        raise InvalidParameter("must be a string", field=field)
    if required and not value.strip():
        raise MandatoryMissing(f"{field} is required", field=field)
    return value


def _optional(value: object, field: str) -> str | None:
    return _string(value, field) or None


def _flag(value: object, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParameter("must be true or false", field=field)
    return value


def _addresses(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameter("must be an array of email addresses", field=field)
    out: list[str] = []
    for i, item in enumerate(value):
        address = email_address(item, f"{field}[{i}]")
        if address not in out:
            out.append(address)
    return out


def _encoding(value: object) -> str:
    name = _string(value, "content.encoding").strip().lower()
    if not name:
        return "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        problem = "not a character set (e.g. utf-8, iso-8859-1)"
        raise InvalidParameter(problem, field="content.encoding") from None
    return name


def _check_charset(encoding: str, texts: tuple[str, ...]) -> None:
    if encoding in ("utf-8", "utf8"):
        return
    for text in texts:
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            problem = f"the content has characters {encoding} cannot hold"
            raise InvalidParameter(problem, field="content.encoding") from None


def _fill(text: str, values: Mapping[str, object], escape: bool) -> str:
    """Placeholders with a value filled in (HTML-escaped in HTML); others left as written."""
    if not values or ("{{" not in text and "$(" not in text):
        return text

    def one(m: re.Match[str]) -> str:
        value = values.get(m.group(1) or m.group(2))
        if value is None:
            return m.group(0)
        word = (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
        return html.escape(word, quote=True) if escape else word

    return _placeholder().sub(one, text)


def _placeholder() -> "re.Pattern[str]":
    from tidings.templates import PLACEHOLDER  # (templates read the config, which reads the channels)

    return PLACEHOLDER


def _one_line(text: str) -> str:
    """A header value: line breaks a substitution brought in become spaces (no header injection)."""
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text
