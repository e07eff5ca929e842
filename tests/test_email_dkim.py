"""DKIM signing with RSA, Ed25519 (RFC 8463) or both, as a receiver checks it: dkimpy verifies each
DKIM-Signature against the TXT record its selector names (`v=DKIM1; k=ed25519; p=<the raw public key>`,
`v=DKIM1; k=rsa; p=<the DER public key>`), a changed body or header fails both, the RSA signature is the
topmost header, and no PyNaCl is needed to sign; then the `[email]` checks of the Ed25519 keys. The signed
email through a running server and the relay stand-in is in test_email_send.py."""

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tidings.channels.base import Outbound
from tidings.channels.email import mime
from tidings.channels.email.connector import dkim_keys
from tidings.channels.email.dkim import Signer
from tidings.channels.email.settings import EmailConfig
from tidings.config import ConfigError, parse_config
from tidings.ids import new_id
from tidings.schema.email import EmailContent

PKCS8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
DER = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
CONTENT = EmailContent(
    sender="news@example.com",
    subject="Your order",
    type="html",
    text="Hello Ann, your order has shipped.",
    html="<p>Hello Ann, your order has shipped.</p>",
    cc=["boss@example.net"],
    replyTo="help@example.com",
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[bytes, bytes]]:
    """An RSA and an Ed25519 key file (PKCS#8 PEM), and the DNS: selector `rsa1` and `ed1` of
    example.com."""
    folder = tmp_path_factory.mktemp("dkim")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    (folder / "rsa.pem").write_bytes(rsa_key.private_bytes(*PKCS8))
    (folder / "ed25519.pem").write_bytes(ed_key.private_bytes(*PKCS8))
    dns = {
        b"rsa1._domainkey.example.com.": b"v=DKIM1; k=rsa; p="
        + base64.b64encode(rsa_key.public_key().public_bytes(*DER)),
        b"ed1._domainkey.example.com.": b"v=DKIM1; k=ed25519; p="
        + base64.b64encode(ed_key.public_key().public_bytes(*RAW)),
    }
    return folder / "rsa.pem", folder / "ed25519.pem", dns


def email_config(rsa_file: Path | None, ed_file: Path | None) -> EmailConfig:
    return EmailConfig(
        bounce_domain="bounces.example.com",
        dkim_domain="example.com",
        dkim_selector="rsa1" if rsa_file else "",
        dkim_key_file=str(rsa_file or ""),
        dkim_ed25519_selector="ed1" if ed_file else "",
        dkim_ed25519_key_file=str(ed_file or ""),
    )


def signed(email: EmailConfig) -> bytes:
    """An email as the connector sends it: built, then signed with the configured keys."""
    m = Outbound(new_id(), "svc", "email", "ann@example.net", CONTENT, 1, None, "email")
    return Signer(email.dkim_domain, dkim_keys(email)).sign(mime.build(m, email.bounce_domain, 1.7e9))


def signatures(data: bytes) -> list[dict[bytes, bytes]]:
    """Each DKIM-Signature's tags, top to bottom."""
    d = dkim.DKIM(data)
    return [dkim.util.parse_tag_value(v) for n, v in d.headers if n.lower() == b"dkim-signature"]


def verifies(data: bytes, index: int, dns: dict[bytes, bytes]) -> bool:
    """Whether the index-th DKIM-Signature (from the top) verifies, as a receiver with `dns` sees it."""
    try:
        return bool(dkim.DKIM(data).verify(idx=index, dnsfunc=lambda name, timeout=5: dns.get(name)))
    except dkim.DKIMException:  # a body hash mismatch, a missing record: as dkim.verify() says, False
        return False


def test_both_signatures_verify_rsa_on_top(keys: tuple[Path, Path, dict[bytes, bytes]]):
    rsa_file, ed_file, dns = keys
    data = signed(email_config(rsa_file, ed_file))

    # Two DKIM-Signature headers in front of the message, RSA first (the topmost), then Ed25519; both
    # over the same headers with the same canonicalisation, both for example.com.
    assert re.match(
        rb"DKIM-Signature: v=1; a=rsa-sha256;.*?\r\nDKIM-Signature: v=1; a=ed25519-sha256;", data, re.S
    )
    rsa_sig, ed_sig = signatures(data)
    assert (rsa_sig[b"a"], rsa_sig[b"s"], ed_sig[b"a"], ed_sig[b"s"]) == (
        b"rsa-sha256",
        b"rsa1",
        b"ed25519-sha256",
        b"ed1",
    )
    signed_headers = re.split(rb"\s*:\s*", rsa_sig[b"h"])
    assert re.split(rb"\s*:\s*", ed_sig[b"h"]) == signed_headers
    assert signed_headers[:5] == [b"from", b"to", b"cc", b"reply-to", b"subject"]
    assert rsa_sig[b"c"] == ed_sig[b"c"] == b"relaxed/relaxed"
    assert rsa_sig[b"d"] == ed_sig[b"d"] == b"example.com"
    assert rsa_sig[b"bh"] == ed_sig[b"bh"]  # the same body, the same hash

    # Each verifies; the topmost is the one dkim.verify() checks, as receivers that read only one do.
    assert verifies(data, 0, dns) and verifies(data, 1, dns)
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: dns.get(name))
    # Neither needs the other: with only its own selector published, each still verifies (a receiver
    # that knows no Ed25519 has, in effect, only the RSA record to go by).
    for index, selector in [(0, b"rsa1"), (1, b"ed1")]:
        own = {k: v for k, v in dns.items() if k.startswith(selector + b".")}
        assert verifies(data, index, own)
        assert not verifies(data, 1 - index, own)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_ed25519_alone_with_a_key_openssl_made(tmp_path: Path):
    path = tmp_path / "ed.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True)
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"], capture_output=True, check=True
    ).stdout
    # The record as docs/email.md says to make it: the last 32 bytes of the DER public key.
    dns = {b"ed1._domainkey.example.com.": b"v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:])}
    email = email_config(None, path)
    assert email.signs and not email.signs_rsa
    data = signed(email)
    assert [s[b"a"] for s in signatures(data)] == [b"ed25519-sha256"]
    assert verifies(data, 0, dns)


def test_a_changed_body_or_header_fails_both(keys: tuple[Path, Path, dict[bytes, bytes]]):
    rsa_file, ed_file, dns = keys
    data = signed(email_config(rsa_file, ed_file))
    assert b"has shipped" in data and b"Subject: Your order" in data
    for tampered in [
        data.replace(b"has shipped", b"has sailed"),
        data.replace(b"Subject: Your order", b"Subject: Your prize"),
    ]:
        assert not verifies(tampered, 0, dns)
        assert not verifies(tampered, 1, dns)


def problems(text: str, folder: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mail.toml", folder)
    return "\n".join(caught.value.problems)


def test_the_ed25519_config_checks(tmp_path: Path, keys: tuple[Path, Path, dict[bytes, bytes]]):
    rsa_file, ed_file, _ = keys
    head = '[email]\ndkim_domain = "example.com"\n'

    # Half a pair: the missing key is named.
    found = problems(head + 'dkim_ed25519_selector = "ed1"\n', tmp_path)
    assert (
        "email.dkim_ed25519_key_file: DKIM signing needs both dkim_ed25519_selector and "
        "dkim_ed25519_key_file (ed25519-sha256)"
    ) in found
    found = problems(head + f'dkim_ed25519_key_file = "{ed_file}"\n', tmp_path)
    assert "email.dkim_ed25519_selector: DKIM signing needs both" in found
    # No dkim_domain; a domain and no key; a selector that is not a DNS label; one selector for both.
    found = problems(
        f'[email]\ndkim_ed25519_selector = "ed1"\ndkim_ed25519_key_file = "{ed_file}"\n', tmp_path
    )
    assert "email.dkim_domain: DKIM signing needs dkim_domain" in found
    assert "email.dkim_domain: signs nothing without a key" in problems(head, tmp_path)
    found = problems(
        head + f'dkim_ed25519_selector = "ed_1!"\ndkim_ed25519_key_file = "{ed_file}"\n', tmp_path
    )
    assert "email.dkim_ed25519_selector: must be a DNS label" in found
    both = f'dkim_selector = "s1"\ndkim_key_file = "{rsa_file}"\n'
    found = problems(
        head + both + f'dkim_ed25519_selector = "s1"\ndkim_ed25519_key_file = "{ed_file}"\n', tmp_path
    )
    assert "email.dkim_ed25519_selector: must differ from dkim_selector" in found

    # Each key in the other's place, a missing file, a file that is no key.
    swapped = f'dkim_selector = "s1"\ndkim_key_file = "{ed_file}"\n'
    swapped += f'dkim_ed25519_selector = "ed1"\ndkim_ed25519_key_file = "{rsa_file}"\n'
    found = problems(head + swapped, tmp_path)
    assert "email.dkim_key_file: is an Ed25519 private key: give it as dkim_ed25519_key_file" in found
    assert "email.dkim_ed25519_key_file: is an RSA private key: give it as dkim_key_file" in found
    (tmp_path / "junk.pem").write_text("not a key")
    for name, expected in [
        ("missing.pem", "cannot read"),
        ("junk.pem", "is not an unencrypted PEM private key"),
    ]:
        found = problems(
            head + f'dkim_ed25519_selector = "ed1"\ndkim_ed25519_key_file = "{name}"\n', tmp_path
        )
        assert f"email.dkim_ed25519_key_file: {expected}" in found

    # Ed25519 alone, and both (a relative file name read from the config's folder).
    shutil.copy(ed_file, tmp_path / "ed.pem")
    alone = parse_config(
        head + 'dkim_ed25519_selector = "ed1"\ndkim_ed25519_key_file = "ed.pem"\n', "m.toml", tmp_path
    )
    assert alone.email.signs_ed25519 and not alone.email.signs_rsa
    config = parse_config(
        head + both + 'dkim_ed25519_selector = "ed1"\ndkim_ed25519_key_file = "ed.pem"\n', "m.toml", tmp_path
    )
    assert config.email.signs_rsa and config.email.signs_ed25519


def test_signing_needs_no_pynacl(tmp_path: Path, keys: tuple[Path, Path, dict[bytes, bytes]]):
    """OpenSSL (through cryptography) makes both signatures: an install without PyNaCl (which dkimpy
    would need to sign Ed25519, and to check it, as this test does) signs with both keys."""
    rsa_file, ed_file, dns = keys
    out = tmp_path / "signed.eml"
    script = (
        "import sys; sys.modules['nacl'] = None; "
        "from tests.test_email_dkim import email_config, signed; from pathlib import Path as P; "
        f"P({str(out)!r}).write_bytes(signed(email_config(P({str(rsa_file)!r}), P({str(ed_file)!r}))))"
    )
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert [s[b"a"] for s in signatures(data)] == [b"rsa-sha256", b"ed25519-sha256"]
    assert verifies(data, 0, dns) and verifies(data, 1, dns)
