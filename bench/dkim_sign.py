#!/usr/bin/env python3
"""What DKIM signing costs per email: rsa-sha256 alone, ed25519-sha256 alone and both (dual signing), so
the extra Ed25519 signature's cost is `both - rsa`.

Signs N emails (default 2,000) as the SMTP connector does (`tidings.channels.email.dkim.Signer`, keys
from `connector.dkim_keys`), each built by `mime.build`: an HTML email with its text part, about 3 KB.
The three signers take turns for --rounds rounds (default 3), so that a burst of other work on the
machine falls on all three; each one's best round is reported, in µs of wall time per email (one
thread, nothing else in the process). A 2048-bit RSA key, as `openssl genpkey` makes by default.

  .venv/bin/python bench/dkim_sign.py
  .venv/bin/python bench/dkim_sign.py --n 5000 --rounds 5

Bounded: --n at most 100,000, and a round stops at --max-seconds (60) whatever it has signed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# The repository instead of bench/ (whose modules could shadow a package of the same name).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa  # noqa: E402

from tidings.channels.base import Outbound  # noqa: E402
from tidings.channels.email import mime  # noqa: E402
from tidings.channels.email.connector import dkim_keys  # noqa: E402
from tidings.channels.email.dkim import Signer  # noqa: E402
from tidings.channels.email.settings import EmailConfig  # noqa: E402
from tidings.ids import new_id  # noqa: E402
from tidings.schema.email import EmailContent  # noqa: E402

PKCS8 = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
PARAGRAPH = "We have shipped your order. Track it with the link below, or reply to this email. "
HTML = "<html><body>" + "".join(f"<p>{PARAGRAPH * 3}</p>" for _ in range(6)) + "</body></html>"
CONTENT = EmailContent(
    sender="news@example.com",
    subject="Your order has shipped",
    type="html",
    text=(PARAGRAPH * 3 + "\n\n") * 6,
    html=HTML,
    fromName="Example Shop",
    replyTo="help@example.com",
)


def messages(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        m = Outbound(new_id(), "svc", "email", f"user{i}@example.net", CONTENT, 1, None, "email")
        out.append(mime.build(m, "bounces.example.com", time.time()))
    return out


def signers(folder: Path) -> dict[str, Signer]:
    rsa_file, ed_file = folder / "rsa.pem", folder / "ed25519.pem"
    rsa_file.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(*PKCS8))
    ed_file.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(*PKCS8))
    base = EmailConfig(dkim_domain="example.com", base_dir=str(folder))
    configs = {
        "rsa-sha256": EmailConfig(**{**_fields(base), "dkim_selector": "s1", "dkim_key_file": "rsa.pem"}),
        "ed25519-sha256": EmailConfig(
            **{**_fields(base), "dkim_ed25519_selector": "ed1", "dkim_ed25519_key_file": "ed25519.pem"}
        ),
    }
    configs["both"] = EmailConfig(
        **{
            **_fields(configs["rsa-sha256"]),
            "dkim_ed25519_selector": "ed1",
            "dkim_ed25519_key_file": "ed25519.pem",
        }
    )
    return {name: Signer(c.dkim_domain, dkim_keys(c)) for name, c in configs.items()}


def _fields(c: EmailConfig) -> dict[str, object]:
    return {f: getattr(c, f) for f in c.__struct_fields__}


def round_us(signer: Signer, data: list[bytes], max_s: float) -> tuple[float, int]:
    """µs per email of one pass over `data`, and how many it signed."""
    start = time.perf_counter()
    done = 0
    for message in data:
        signer.sign(message)
        done += 1
        if done % 100 == 0 and time.perf_counter() - start > max_s:
            break
    return (time.perf_counter() - start) / done * 1e6, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="emails per round (at most 100,000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=60.0, help="a round stops here")
    a = ap.parse_args()
    n = max(1, min(a.n, 100_000))
    data = messages(n)
    print(f"{n} emails of {sum(map(len, data)) // n} bytes, {a.rounds} rounds; load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        by_name = signers(Path(folder))
        for signer in by_name.values():  # warm-up: key parsing, imports, caches
            round_us(signer, data[:50], a.max_seconds)
        best: dict[str, float] = {}
        for _ in range(max(1, a.rounds)):
            for name, signer in by_name.items():
                us, done = round_us(signer, data, a.max_seconds)
                best[name] = min(best.get(name, us), us)
                print(f"  {name:15} {us:8.1f} µs/email ({done} signed)")
    for name, us in best.items():
        print(f"best {name:15} {us:8.1f} µs/email")
    print(f"the Ed25519 signature beside RSA: +{best['both'] - best['rsa-sha256']:.1f} µs/email")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
