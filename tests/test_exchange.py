"""What a provider attempt keeps of a request or an answer (tidings/channels/exchange.py): no credential,
named or shaped like one, and no more than 4 KiB of either."""

from tidings.channels.exchange import LIMIT, MARK, exchange, http_answer, http_request, merged


def test_credentials_are_removed_whether_named_or_shaped_like_one() -> None:
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ0ZWFtIn0.c2lnbmF0dXJl"
    request = http_request(
        "POST",
        "https://user:pw-123@push.example/v1/send?access_token=tok-456&to=1",
        '{"client_secret": "cs-789", "password":"p\\"w", "text": "hi"}',
        {"TTL": "60"},
    )
    answer = f"HTTP 401\n\nAuthorization: Bearer tok-456xyz, vapid t={jwt}, named sekrit-0\n" + (
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----"
    )
    x = exchange(request, answer, ["sekrit-0"])
    for secret in ("pw-123", "tok-456", "cs-789", 'p\\"w', jwt, "sekrit-0", "MIGHAgEA"):
        assert secret not in x.request + x.answer, secret
    assert x.request.startswith(f"POST https://push.example/v1/send?access_token={MARK}&to=1\nTTL: 60\n\n")
    assert '"text": "hi"' in x.request and f'"client_secret": "{MARK}"' in x.request
    assert x.answer.startswith(f"HTTP 401\n\nAuthorization: Bearer {MARK}")


def test_each_text_is_cut_to_the_limit_and_several_providers_are_headed() -> None:
    x = exchange(http_request("POST", "https://p.example/", "a" * 10_000), http_answer(200, b"b" * 10_000))
    assert len(x.request) <= LIMIT and len(x.answer) <= LIMIT
    assert x.request.endswith("more characters not kept)")
    both = merged([("fcm", exchange("r1", "a1")), ("apns", exchange("r2", "a2"))])
    assert both is not None and both.request == "── fcm ──\nr1\n\n── apns ──\nr2"
    assert merged([]) is None
