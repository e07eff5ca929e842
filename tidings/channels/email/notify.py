"""What Tidings asks the relay to report (RFC 3461, the SMTP DSN extension), when the relay offers DSN.

Without it a relay reports failures only, and Tidings can never say Delivered: CONTRACT.md wants
evidence, and a success DSN is the only evidence SMTP has. So for the message's own address the RCPT TO
carries `NOTIFY=` (the relay's `dsn_notify`, SUCCESS and FAILURE by default) and `ORCPT=rfc822;<address>`
(the report then names the address as Tidings gave it, whatever the relay rewrote it to); MAIL FROM
carries `RET=HDRS` (a report brings back the headers, not the whole message) and `ENVID=<transid>`.
Copies (cc, bcc) get no `NOTIFY`: a report on them says nothing about the message (the bounce listener
ignores it), so they get the relay's default, as before.

Nothing is asked when the relay does not offer DSN (RFC 3461 forbids the parameters then), nor without
`[email] bounce_domain`: the envelope sender is then the From address, and a success report for every
email would land in a person's mailbox.
"""

from dataclasses import dataclass

NOTIFY_VALUES = ("success", "failure", "delay", "never")


@dataclass(slots=True)
class Dsn:
    """The DSN parameters for one message; `asked` says whether the session offered DSN and they went."""

    envid: str  # the transid
    address: str  # the message's own address (not the copies)
    notify: tuple[str, ...]  # from NOTIFY_VALUES
    asked: bool = False

    def mail_options(self) -> list[bytes]:
        return [b"RET=HDRS", b"ENVID=" + xtext(self.envid)]

    def rcpt_options(self, address: str) -> list[bytes]:
        if address != self.address:
            return []
        notify = ",".join(self.notify).upper().encode("ascii")
        return [b"NOTIFY=" + notify, b"ORCPT=rfc822;" + xtext(address)]


def xtext(value: str) -> bytes:
    """RFC 3461 section 4: printable ASCII but "+" and "=" as itself, anything else as +HH."""
    out = bytearray()
    for byte in value.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):
            out.append(byte)
        else:
            out += b"+%02X" % byte
    return bytes(out)


def check_notify(values: list[str]) -> str | None:
    """What is wrong with a `dsn_notify` list, or None: `never` alone, or some of success, failure and
    delay; an empty list asks nothing (the relay's default)."""
    unknown = [v for v in values if v not in NOTIFY_VALUES]
    if unknown:
        return f"unknown value {unknown[0]!r}: each must be one of success, failure, delay (or never alone)"
    if "never" in values and len(values) > 1:
        return "'never' must be alone"
    if len(set(values)) != len(values):
        return "names a value twice"
    return None
