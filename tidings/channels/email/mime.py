"""An email's MIME form, as the relay receives it.

    text email   text/plain
    html email   multipart/alternative: text/plain (given, or generated from the HTML at accept), then
                 text/html (the more faithful part last, RFC 2046 §5.1.4)
Headers: From (with `options.fromName`), To (the address, or every address of its `to[]` entry with
multipleToRecipients), Cc (never Bcc: bcc addresses are envelope recipients only), Reply-To, Subject,
Date (when it is sent), Message-ID `<transid@sender's domain>` (the same on every retry, so a receiver
can drop a duplicate), and for a bulk send (a request of several addresses) RFC 8058's
`List-Unsubscribe: <mailto:unsubscribe+<code>@<bounce_domain>>, <one-click URL>` with
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`. The envelope sender is
`bounces+<transid>@<bounce_domain>` (VERP), so a bounce names its message.

The stdlib `email` package makes the parts that need RFC 2047/5322 care (encoded words for non-ASCII
subjects and names, address quoting, the date); the message is assembled here rather than through
`EmailMessage`, which took 1 to 5 ms a message on the bench machine, more than the whole budget of a
1,000 emails/s relay feed. Bodies are 7bit when they are ASCII with short lines, else quoted-printable
(binascii's C encoder): links stay readable in the source, as spam filters prefer.
"""

import binascii
import random
from email.header import Header
from email.utils import formataddr, formatdate

from tidings.channels.base import Outbound
from tidings.schema.email import EmailContent

CRLF = b"\r\n"
MAX_LINE = 998  # RFC 5322 §2.1.1, without the CRLF
_bits = random.getrandbits  # a boundary must be unlikely in the body, not secret


def envelope_sender(transid: str, content: EmailContent, bounce_domain: str) -> str:
    """VERP: `bounces+<transid>@<bounce_domain>`; the From address when no bounce domain is set."""
    return f"bounces+{transid}@{bounce_domain}" if bounce_domain else content.sender


def envelope_recipients(m: Outbound) -> list[str]:
    """The message's address first (its result is the message's), then cc and bcc, each once."""
    content = m.content
    assert isinstance(content, EmailContent)
    if not content.copies:
        return [m.address]
    return list(dict.fromkeys([m.address, *content.cc, *content.bcc]))


def build(m: Outbound, bounce_domain: str, now: float) -> bytes:
    """The message as bytes with CRLF line ends, ready for DATA (and for DKIM signing)."""
    c = m.content
    assert isinstance(c, EmailContent)
    domain = c.sender.rpartition("@")[2]
    head: list[tuple[str, str]] = [
        ("From", _from(c)),
        ("To", _address_list(c.to or [m.address])),
    ]
    if c.cc:
        head.append(("Cc", _address_list(c.cc)))
    if c.replyTo:
        head.append(("Reply-To", c.replyTo))
    head += [
        ("Subject", _text("Subject", c.subject, c.encoding)),
        ("Date", _date(now)),
        ("Message-ID", f"<{m.transid}@{domain}>"),
    ]
    if c.unsubscribe:
        code = c.unsubscribe.rpartition("/")[2]
        links = [f"<{c.unsubscribe}>"]
        if bounce_domain:
            links.insert(0, f"<mailto:unsubscribe+{code}@{bounce_domain}?subject=unsubscribe>")
        head.append(("List-Unsubscribe", ",\r\n ".join(links)))
        head.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    head.append(("MIME-Version", "1.0"))
    text = _part("plain", c.text or "\n", c.encoding)
    if c.type != "html":
        return _lines(head) + text  # the part's own headers end the message's
    boundary = f"=_{_bits(96):024x}"
    head.append(("Content-Type", f'multipart/alternative;\r\n boundary="{boundary}"'))
    html = _part("html", c.html, c.encoding)
    sep = f"--{boundary}".encode()
    return b"".join([_lines(head), CRLF, sep, CRLF, text, CRLF, sep, CRLF, html, CRLF, sep, b"--", CRLF])


_dates: dict[int, str] = {}


def _date(now: float) -> str:
    """The Date header of this second (RFC 5322 dates have no fractions): made once a second."""
    second = int(now)
    date = _dates.get(second)
    if date is None:
        _dates.clear()
        date = _dates[second] = formatdate(second, usegmt=True)
    return date


def _lines(head: list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in head).encode("ascii")


def _part(subtype: str, body: str, charset: str) -> bytes:
    """One text part: its Content-Type and Content-Transfer-Encoding, a blank line, the body."""
    data = body.replace("\r\n", "\n").replace("\r", "\n").encode(charset)
    if data.isascii() and all(len(line) <= MAX_LINE for line in data.split(b"\n")):
        cte, encoded = "7bit", data
    else:
        cte, encoded = "quoted-printable", binascii.b2a_qp(data, istext=True)
    if not encoded.endswith(b"\n"):
        encoded += b"\n"
    head = f'Content-Type: text/{subtype}; charset="{charset}"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    return head.encode("ascii") + encoded.replace(b"\n", CRLF)


def _from(c: EmailContent) -> str:
    if not c.fromName:
        return c.sender
    return formataddr((c.fromName, c.sender), charset=c.encoding if c.encoding != "utf8" else "utf-8")


def _address_list(addresses: list[str]) -> str:
    return ",\r\n ".join(addresses)


def _text(name: str, value: str, charset: str) -> str:
    """An unstructured header: as is when ASCII and short, else RFC 2047 encoded words, folded."""
    if value.isascii() and len(value) + len(name) + 2 <= 78:
        return value
    header = Header(value, "us-ascii" if value.isascii() else charset, header_name=name)
    return header.encode(linesep="\r\n")
