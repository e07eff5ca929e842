"""DKIM signing (RFC 6376) with dkimpy: an rsa-sha256 signature over the headers a relay or list
manager does not rewrite, relaxed/relaxed canonicalisation (it survives the header folding and
trailing-space changes relays make)."""

from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Signed when present; From is always signed (RFC 6376 §5.4). Not Bcc, not Return-Path (set later).
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"reply-to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)
MIN_BITS = 1024  # what verifiers accept (dkimpy's own minimum)


class Signer:
    def __init__(self, domain: str, selector: str, key_file: Path) -> None:
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self._key = _pkcs1(key_file.read_bytes())

    def sign(self, message: bytes) -> bytes:
        """`message` (CRLF line ends) with a DKIM-Signature header in front."""
        present = _header_names(message)
        headers = [h for h in SIGNED_HEADERS if h in present]
        signature: bytes = dkim.sign(
            message,
            self.selector,
            self.domain,
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers,
        )
        return signature + message


def key_problem(path: Path) -> str | None:
    """Why a key file cannot sign (check-config), or None."""
    try:
        _pkcs1(path.read_bytes())
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError as exc:  # not a usable key, or a NUL in the file's name
        return str(exc)
    return None


def _pkcs1(pem: bytes) -> bytes:
    """The key as dkimpy reads it (PKCS#1 PEM), from a PKCS#1 or PKCS#8 PEM file."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("must be an RSA private key (rsa-sha256 signing)")
    if key.key_size < MIN_BITS:
        raise ValueError(f"the RSA key has {key.key_size} bits; verifiers want at least {MIN_BITS}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _header_names(message: bytes) -> set[bytes]:
    head = message.split(b"\r\n\r\n", 1)[0]
    return {line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"}
