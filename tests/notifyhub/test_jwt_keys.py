"""The web process checks its JWT key once: tokens verify and fail exactly as before, and a bad key is still refused."""

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from jwt.algorithms import HMACAlgorithm
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from notifyhub import jwt_keys

KEY = "a-test-signing-key-long-enough-for-hs512-0123456789-0123456789-0123456789"


@pytest.fixture
def installed():
    """PyJWT's registry with the web process's algorithms, new (no key remembered: this process may have
    imported the ASGI application already), put back as it was afterwards."""
    originals = {name: jwt.get_algorithm_by_name(name) for name in jwt_keys.HMAC_ALGORITHMS}
    for name, hash_alg in jwt_keys.HMAC_ALGORITHMS.items():  # PyJWT's own, as in a process that never installed
        jwt.unregister_algorithm(name)
        jwt.register_algorithm(name, HMACAlgorithm(hash_alg))
    jwt_keys.install()
    yield
    for name, algorithm in originals.items():
        jwt.unregister_algorithm(name)
        jwt.register_algorithm(name, algorithm)


def test_install_replaces_the_hmac_algorithms_once(installed):
    replaced = {name: jwt.get_algorithm_by_name(name) for name in jwt_keys.HMAC_ALGORITHMS}
    jwt_keys.install()  # again: as a second import of the ASGI application would

    assert all(isinstance(algorithm, jwt_keys.KeyCheckedOnceHMAC) for algorithm in replaced.values())
    assert {name: jwt.get_algorithm_by_name(name) for name in jwt_keys.HMAC_ALGORITHMS} == replaced


@pytest.mark.parametrize("algorithm", sorted(jwt_keys.HMAC_ALGORITHMS))
def test_tokens_verify_and_fail_as_with_pyjwts_own_algorithm(installed, algorithm):
    token = jwt.encode({"sub": "7"}, KEY, algorithm=algorithm)

    assert jwt.decode(token, KEY, algorithms=[algorithm]) == {"sub": "7"}
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, KEY + "-another", algorithms=[algorithm])
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"  # its first byte differs
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, KEY, algorithms=[algorithm])


def test_simplejwt_access_tokens_still_verify_and_refuse_tampering(installed, django_user_model):
    raw = str(AccessToken.for_user(django_user_model(pk=7)))
    header, payload, signature = raw.split(".")

    assert AccessToken(raw)["user_id"] == "7"  # type: ignore[arg-type]
    unsigned = jwt.encode({"user_id": "7", "token_type": "access", "exp": 2**40}, None, algorithm="none")
    for forged in (f"{header}.{payload}.{signature[::-1]}", unsigned):
        with pytest.raises(TokenError):
            AccessToken(forged)  # type: ignore[arg-type]
    assert settings.SIMPLE_JWT["ALGORITHM"] in jwt_keys.HMAC_ALGORITHMS


def test_a_key_that_must_not_be_an_hmac_secret_is_refused_every_time(installed):
    public_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for _ in range(2):  # a refused key is not remembered
        with pytest.raises(jwt.InvalidKeyError):
            jwt.encode({"sub": "7"}, public_pem, algorithm="HS256")


def test_pyjwts_checks_run_once_per_key(installed, monkeypatch):
    checked = []
    check = HMACAlgorithm.prepare_key
    monkeypatch.setattr(HMACAlgorithm, "prepare_key", lambda self, key: checked.append(key) or check(self, key))
    token = jwt.encode({"sub": "7"}, KEY, algorithm="HS256")

    for _ in range(3):
        jwt.decode(token, KEY, algorithms=["HS256"])
    jwt.decode(jwt.encode({"sub": "8"}, KEY + "-2", algorithm="HS256"), KEY + "-2", algorithms=["HS256"])

    assert checked == [KEY.encode(), (KEY + "-2").encode()]
