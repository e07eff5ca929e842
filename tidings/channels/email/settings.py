"""The email settings: `[[smtp]]` (one relay per entry, a provider kind like `[[smsc]]`) and `[email]`
(what every email shares: the bounce domain of the envelope sender, DKIM signing), with their checks."""

import ssl
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tidings.channels.email.notify import check_notify
from tidings.channels.kind import AddProblem, KeyPath
from tidings.schema.email import is_domain, is_label

SECURITY = ("starttls", "tls", "none")


class SmtpConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    host: str = "127.0.0.1"
    port: int = 587
    security: str = "starttls"  # "starttls", "tls" (implicit TLS, usually port 465) or "none"
    username: str = ""  # AUTH when set
    password: str = ""  # never logged
    ca_file: str = ""  # PEM bundle the relay's certificate is checked against (else the system's)
    connections: int = 4  # pooled connections, reused from message to message
    timeout_s: float = 10.0  # per SMTP command (a batch has 30 s in all: keep it well under)
    # RFC 3461 NOTIFY for the message's address when the relay offers DSN (notify.py); [] asks nothing
    dsn_notify: list[str] = msgspec.field(default_factory=lambda: ["success", "failure"])
    # Not a TOML key: the folder a relative ca_file is read from (the config file's; "" = the working
    # directory).
    base_dir: str = ""

    def __repr__(self) -> str:  # the password never reaches a log line
        return f"SmtpConfig(name={self.name!r}, host={self.host!r}, port={self.port})"


class EmailConfig(msgspec.Struct, forbid_unknown_fields=True):
    bounce_domain: str = ""  # envelope sender bounces+<transid>@bounce_domain (VERP); "" = the From address
    bounce_port: int = 0  # the bounce listener's SMTP port (email's bounces); 0 = off
    bounce_host: str = "127.0.0.1"  # the address the bounce listener binds
    bounce_max_sessions: int = 100  # connections at a time; one more is answered 421
    bounce_tls_cert_file: str = ""  # PEM certificate chain: STARTTLS offered when both are set
    bounce_tls_key_file: str = ""  # its PEM private key, unencrypted
    dkim_domain: str = ""  # the d= of every DKIM signature; signing needs one selector and key pair below
    dkim_selector: str = ""  # rsa-sha256, with dkim_key_file
    dkim_key_file: str = ""  # PEM private key, RSA, unencrypted
    dkim_ed25519_selector: str = ""  # ed25519-sha256 (RFC 8463), with dkim_ed25519_key_file
    dkim_ed25519_key_file: str = ""  # PEM private key, Ed25519 (PKCS#8), unencrypted
    base_dir: str = ""  # not a TOML key: the folder relative file names are read from

    @property
    def signs_rsa(self) -> bool:
        return bool(self.dkim_domain and self.dkim_selector and self.dkim_key_file)

    @property
    def signs_ed25519(self) -> bool:
        return bool(self.dkim_domain and self.dkim_ed25519_selector and self.dkim_ed25519_key_file)

    @property
    def signs(self) -> bool:
        return self.signs_rsa or self.signs_ed25519

    def bounce_tls(self) -> ssl.SSLContext | None:
        """The bounce listener's STARTTLS context, or None when no certificate is configured. Raises
        OSError or ssl.SSLError when the files cannot be read or do not match (check_email says so)."""
        if not (self.bounce_tls_cert_file and self.bounce_tls_key_file):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert = resolve(self.base_dir, self.bounce_tls_cert_file)
        context.load_cert_chain(cert, resolve(self.base_dir, self.bounce_tls_key_file))
        return context


def resolve(base_dir: str, path: str) -> Path:
    """A file named in the config: relative paths are read from the config file's folder."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or not base_dir else Path(base_dir) / p


def check(entries: Sequence[tuple[KeyPath, SmtpConfig]], add: AddProblem) -> None:
    names: set[str] = set()
    for where, c in entries:
        if not c.name.strip() or c.name == "sandbox":
            add((*where, "name"), "must be a non-empty name other than 'sandbox'")
        elif c.name in names:
            add((*where, "name"), f"duplicate smtp name {c.name!r}")
        names.add(c.name)
        if not c.host.strip():
            add((*where, "host"), "must not be empty")
        if not 1 <= c.port <= 65535:
            add((*where, "port"), f"must be between 1 and 65535, got {c.port}")
        if c.security not in SECURITY:
            add((*where, "security"), f"must be one of {', '.join(SECURITY)}")
        if c.password and not c.username:
            add((*where, "password"), "is given without a username")
        if c.username and c.security == "none" and c.host not in ("127.0.0.1", "::1", "localhost"):
            add((*where, "security"), "would send the password in clear to a remote relay: use starttls")
        if c.ca_file and (problem := _unreadable(resolve(c.base_dir, c.ca_file))):
            add((*where, "ca_file"), problem)
        if c.connections < 1:
            add((*where, "connections"), "must be at least 1")
        if c.timeout_s <= 0:
            add((*where, "timeout_s"), "must be greater than 0")
        if (problem := check_notify(c.dsn_notify)) is not None:
            add((*where, "dsn_notify"), problem)


def check_email(email: EmailConfig, add: AddProblem) -> None:
    """`[email]`'s own checks (check-config and start-up)."""
    where: KeyPath = ("email",)
    if email.bounce_domain and not is_domain(email.bounce_domain):
        add((*where, "bounce_domain"), "must be a domain name such as bounces.example.com")
    if not 0 <= email.bounce_port <= 65535:
        add((*where, "bounce_port"), f"must be between 0 and 65535, got {email.bounce_port}")
    elif email.bounce_port and not email.bounce_domain:
        add(
            (*where, "bounce_port"),
            "needs bounce_domain (the listener takes bounces+<id>@bounce_domain only)",
        )
    if not email.bounce_host.strip():
        add((*where, "bounce_host"), "must be an address to listen on, such as 127.0.0.1")
    if email.bounce_max_sessions < 1:
        add((*where, "bounce_max_sessions"), f"must be at least 1, got {email.bounce_max_sessions}")
    _check_bounce_tls(email, add)
    _check_dkim(email, add)


# The DKIM key pairs: (algorithm, selector key, key file key).
DKIM_PAIRS = (
    ("rsa-sha256", "dkim_selector", "dkim_key_file"),
    ("ed25519-sha256", "dkim_ed25519_selector", "dkim_ed25519_key_file"),
)


def _check_dkim(email: EmailConfig, add: AddProblem) -> None:
    where: KeyPath = ("email",)
    values = {
        "dkim_selector": email.dkim_selector,
        "dkim_key_file": email.dkim_key_file,
        "dkim_ed25519_selector": email.dkim_ed25519_selector,
        "dkim_ed25519_key_file": email.dkim_ed25519_key_file,
    }
    for algorithm, selector, key_file in DKIM_PAIRS:
        if bool(values[selector]) != bool(values[key_file]):
            missing = key_file if values[selector] else selector
            add((*where, missing), f"DKIM signing needs both {selector} and {key_file} ({algorithm})")
    if email.dkim_domain and not any(values.values()):
        add(
            (*where, "dkim_domain"),
            "signs nothing without a key: set dkim_selector and dkim_key_file (RSA), "
            "dkim_ed25519_selector and dkim_ed25519_key_file (Ed25519), or both",
        )
    if any(values.values()) and not email.dkim_domain:
        add((*where, "dkim_domain"), "DKIM signing needs dkim_domain (the d= of every signature)")
    if email.dkim_domain and not is_domain(email.dkim_domain):
        add((*where, "dkim_domain"), "must be a domain name")
    for _, selector, _ in DKIM_PAIRS:
        if values[selector] and not all(is_label(p) for p in values[selector].split(".")):
            add((*where, selector), "must be a DNS label (letters, digits, hyphens), dots allowed")
    if email.dkim_selector and email.dkim_selector == email.dkim_ed25519_selector:
        add(
            (*where, "dkim_ed25519_selector"),
            "must differ from dkim_selector: each selector's DNS record publishes one key",
        )
    if email.dkim_key_file or email.dkim_ed25519_key_file:
        # dkimpy only when signing is configured
        from tidings.channels.email.dkim import ed25519_key_problem, key_problem

        if email.dkim_key_file and (problem := key_problem(resolve(email.base_dir, email.dkim_key_file))):
            add((*where, "dkim_key_file"), problem)
        ed_file = email.dkim_ed25519_key_file
        if ed_file and (problem := ed25519_key_problem(resolve(email.base_dir, ed_file))):
            add((*where, "dkim_ed25519_key_file"), problem)


def _check_bounce_tls(email: EmailConfig, add: AddProblem) -> None:
    pair = {"bounce_tls_cert_file": email.bounce_tls_cert_file}
    pair["bounce_tls_key_file"] = email.bounce_tls_key_file
    if not any(pair.values()):
        return
    if not all(pair.values()):
        for key, value in pair.items():
            if not value:
                add(("email", key), "STARTTLS needs bounce_tls_cert_file and bounce_tls_key_file")
        return
    try:
        email.bounce_tls()
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        add(("email", "bounce_tls_cert_file"), f"cannot load the certificate and key: {why}")


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb"):
            return None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError:  # a NUL in the name: no file can have it
        return f"cannot read {str(path)!r}: a file name cannot hold a NUL character"
