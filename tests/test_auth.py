"""Service key and JWT authentication: HS256 with the Base64-decoded secret, and the JWT wins."""

import time
import warnings

import pytest

from tests.conftest import KEY_A, KEY_B, SECRET_A, SECRET_B, b64, make_jwt, sms
from tests.support.server import TidingsServer

BODY = sms(["+447700900123"])


def code_for(server: TidingsServer, headers: dict[str, str]) -> str:
    r = server.send(BODY, headers=headers)
    assert r.status_code == 200
    response = r.json()["response"]
    return response[0]["code"] if isinstance(response, list) else response["code"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_key_alone(server: TidingsServer):
    assert code_for(server, {"key": KEY_A}) == "1001"


@pytest.mark.parametrize("iss", ["svc-a", KEY_A])
def test_jwt_with_service_id_or_key_as_issuer(server: TidingsServer, iss: str):
    assert code_for(server, bearer(make_jwt(SECRET_A, iss))) == "1001"


def test_jwt_with_exp_in_the_future(server: TidingsServer):
    token = make_jwt(SECRET_A, "svc-a", exp=int(time.time()) + 600)
    assert code_for(server, bearer(token)) == "1001"


def test_jwt_wins_over_a_wrong_key(server: TidingsServer):
    assert code_for(server, {**bearer(make_jwt(SECRET_A, "svc-a")), "key": "wrong"}) == "1001"


def test_a_wrong_jwt_fails_even_with_the_right_key(server: TidingsServer):
    assert code_for(server, {**bearer(make_jwt(SECRET_B, "svc-a")), "key": KEY_A}) == "7001"


def test_jwt_decides_which_service_sends(server: TidingsServer):
    # svc-b may only use sender BETA: a JWT for svc-b with svc-a's key beside it must be judged as svc-b.
    headers = {**bearer(make_jwt(SECRET_B, "svc-b")), "key": KEY_A}
    r = server.send(BODY, headers=headers).json()["response"]
    assert r["code"] == "7004" and "senderid" in r["description"]
    assert code_for(server, {**bearer(make_jwt(SECRET_A, "svc-a")), "key": KEY_B}) == "1001"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: make_jwt(SECRET_A, "svc-a", exp=int(time.time()) - 120), id="expired"),
        pytest.param(lambda: make_jwt(SECRET_A, "svc-a", iat=int(time.time()) - 3700), id="iat-over-60-min"),
        pytest.param(lambda: make_jwt(SECRET_A, "svc-a", iat=None), id="no-iat"),
        pytest.param(lambda: make_jwt(b64(SECRET_A).encode(), "svc-a"), id="signed-with-undecoded-secret"),
        pytest.param(lambda: make_jwt(SECRET_A, "svc-unknown"), id="unknown-iss"),
        pytest.param(lambda: make_jwt(SECRET_A, None), id="no-iss"),
        pytest.param(lambda: "not.a.jwt", id="malformed"),
        pytest.param(lambda: make_jwt(SECRET_A, "svc-a", iat=int(time.time()) + 3600), id="iat-in-future"),
    ],
)
def test_bad_jwts_are_7001(server: TidingsServer, token):
    assert code_for(server, {**bearer(token()), "key": KEY_A}) == "7001"


def test_jwt_of_another_algorithm_is_refused(server: TidingsServer):
    import jwt as pyjwt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pyjwt.warnings.InsecureKeyLengthWarning)
        token = pyjwt.encode({"iss": "svc-a", "iat": int(time.time())}, SECRET_A, algorithm="HS512")
    assert code_for(server, bearer(token)) == "7001"


def test_jwt_for_an_inactive_service_is_7007(server: TidingsServer):
    # svc-off has the contract's example secret, "secret-secret": short secrets work too.
    assert code_for(server, bearer(make_jwt(b"secret-secret", "svc-off"))) == "7007"


def test_non_bearer_authorization_falls_back_to_key(server: TidingsServer):
    assert code_for(server, {"Authorization": "Basic abc", "key": KEY_A}) == "1001"
    assert code_for(server, {"Authorization": "Basic abc"}) == "7002"
