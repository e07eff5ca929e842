"""DKIM signing with dkimpy: rsa-sha256 (RFC 6376), ed25519-sha256 (RFC 8463), or both on one message
(dual signing: a receiver that knows Ed25519 may check that signature, the many that do not, Gmail among
them, check the RSA one and ignore the other, as RFC 6376 §6.1 has them do with an unknown algorithm).
Every signature covers the same headers, those a relay or list manager does not rewrite, with
relaxed/relaxed canonicalisation (it survives the header folding and trailing-space changes relays
make). PyNaCl, which dkimpy signs Ed25519 with, is needed only when an Ed25519 key is configured."""

import base64
import dataclasses
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

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
RSA_SHA256 = b"rsa-sha256"
ED25519_SHA256 = b"ed25519-sha256"
NO_NACL = (
    "Ed25519 signing needs PyNaCl, which is not installed: pip install 'pynacl>=1.5,<2' "
    "(it is among Tidings' dependencies; a trimmed install may lack it)"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Key:
    """One signing key, as dkimpy takes it."""

    selector: bytes
    algorithm: bytes  # RSA_SHA256 or ED25519_SHA256
    private: bytes = dataclasses.field(repr=False)  # RSA: PKCS#1 PEM; Ed25519: base64 of the 32-byte seed


def rsa_key(selector: str, path: Path) -> Key:
    return Key(selector.encode("ascii"), RSA_SHA256, _pkcs1(path.read_bytes()))


def ed25519_key(selector: str, path: Path) -> Key:
    _need_nacl()
    return Key(selector.encode("ascii"), ED25519_SHA256, _ed25519_seed(path.read_bytes()))


class Signer:
    def __init__(self, domain: str, keys: Sequence[Key]) -> None:
        if not keys:
            raise ValueError("DKIM signing needs a key")
        self.domain = domain.encode("ascii")
        self.keys = tuple(keys)

    def sign(self, message: bytes) -> bytes:
        """`message` (CRLF line ends) with one DKIM-Signature header per key in front, in the keys'
        order (the first key's on top). Each signs the message as given: no signature covers another,
        so a verifier checks either alone."""
        present = _header_names(message)
        headers = [h for h in SIGNED_HEADERS if h in present]
        parsed = dkim.DKIM(message)  # parsed once for every key
        signatures = [_sign(parsed, key, self.domain, headers) for key in self.keys]
        return b"".join(signatures) + message


def _sign(parsed: Any, key: Key, domain: bytes, headers: list[bytes]) -> bytes:
    signature: bytes = parsed.sign(
        key.selector,
        domain,
        key.private,
        signature_algorithm=key.algorithm,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
    )
    return signature


def key_problem(path: Path) -> str | None:
    """Why `dkim_key_file` cannot sign rsa-sha256 (check-config), or None."""
    return _problem(path, _pkcs1)


def ed25519_key_problem(path: Path) -> str | None:
    """Why `dkim_ed25519_key_file` cannot sign ed25519-sha256 (check-config), or None."""
    try:
        _need_nacl()
    except ValueError as exc:
        return str(exc)
    return _problem(path, _ed25519_seed)


def _problem(path: Path, read: Callable[[bytes], bytes]) -> str | None:
    try:
        read(path.read_bytes())
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    except ValueError as exc:  # not a usable key, or a NUL in the file's name
        return str(exc)
    return None


def _need_nacl() -> None:
    # dkimpy imports PyNaCl itself when it can and fails at the first Ed25519 signature when it could
    # not: ask here, so that check-config and start-up say so instead.
    try:
        importlib.import_module("nacl.signing")
    except ImportError:
        raise ValueError(NO_NACL) from None


def _private_key(pem: bytes) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"is not an unencrypted PEM private key ({exc})") from None


def _pkcs1(pem: bytes) -> bytes:
    """The key as dkimpy reads it (PKCS#1 PEM), from a PKCS#1 or PKCS#8 PEM file."""
    key = _private_key(pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(
            "is an Ed25519 private key: give it as dkim_ed25519_key_file (with dkim_ed25519_selector); "
            "dkim_key_file takes an RSA key (rsa-sha256)"
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("must be an RSA private key (rsa-sha256 signing)")
    if key.key_size < MIN_BITS:
        raise ValueError(f"the RSA key has {key.key_size} bits; verifiers want at least {MIN_BITS}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _ed25519_seed(pem: bytes) -> bytes:
    """The key as dkimpy reads it (base64 of the 32-byte private key), from a PKCS#8 PEM file as
    `openssl genpkey -algorithm ed25519` writes."""
    key = _private_key(pem)
    if isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(
            "is an RSA private key: give it as dkim_key_file (with dkim_selector); "
            "dkim_ed25519_key_file takes an Ed25519 key (openssl genpkey -algorithm ed25519)"
        )
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("must be an Ed25519 private key (openssl genpkey -algorithm ed25519)")
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


def _header_names(message: bytes) -> set[bytes]:
    head = message.split(b"\r\n\r\n", 1)[0]
    return {line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"}
