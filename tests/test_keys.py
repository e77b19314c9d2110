"""Which key verifies a token, and with which algorithm (gateway/keys.py): tables, no server."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448
from cryptography.x509.oid import NameOID

from gateway.keys import (
    EDDSA,
    HMAC,
    RSA,
    Keyring,
    Refused,
    UnknownKey,
    VerifyKey,
    choose,
    keyring_from_jwks,
    keyring_from_pem,
    keyring_from_secret,
)

from .issuer import SigningKey


def public_pem(key: SigningKey | Any) -> str:
    private = key.private if isinstance(key, SigningKey) else key
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def verified(keyring: Keyring, token: str) -> dict[str, Any]:
    """The token's claims, decoded with the key and algorithm choose() picks (as auth does)."""
    key, alg = choose(keyring, jwt.get_unverified_header(token))
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[alg])
    return claims


def hs256_signed_with(text: str) -> str:
    """The classic algorithm-confusion forgery: an HS256 token whose HMAC key is public key text."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps({"exp": 2**40}).encode())
    return head + "." + b64(hmac.new(text.encode(), head.encode(), hashlib.sha256).digest())


@pytest.mark.parametrize(
    ("alg", "accepted"),
    [
        ("RS256", RSA),
        ("PS256", RSA),
        ("ES256", frozenset({"ES256"})),
        ("ES384", frozenset({"ES384"})),
        ("EdDSA", EDDSA),
    ],
)
def test_a_pem_picks_its_algorithms_from_its_key_type(alg: str, accepted: frozenset[str]) -> None:
    signer = SigningKey.new("any", alg)
    keyring = keyring_from_pem(public_pem(signer))
    assert keyring.keys[0].algorithms == accepted and not keyring.by_kid
    assert verified(keyring, signer.token())["topics"] == ["todos"]
    assert verified(keyring, signer.token(kid="whatever")) and verified(keyring, signer.token(kid=None))


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_an_hs256_token_signed_with_the_public_key_text_is_refused(alg: str) -> None:
    pem = public_pem(SigningKey.new(None, alg))
    with pytest.raises(Refused, match="signed with HS256, which the key"):
        verified(keyring_from_pem(pem), hs256_signed_with(pem))


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ({"alg": "none"}, "alg none"),
        ({"alg": "None"}, "alg none"),
        ({}, "names no algorithm"),
        ({"alg": ""}, "names no algorithm"),
        ({"alg": 256}, "names no algorithm"),
        ({"alg": "HS512"}, "'HS512' is not accepted"),
        ({"alg": "ES256K"}, "'ES256K' is not accepted"),
        ({"alg": "ES256", "kid": 7}, "kid must be a string"),
    ],
)
def test_a_header_no_key_may_verify_is_refused(header: dict[str, object], says: str) -> None:
    for keyring in (keyring_from_secret("s" * 32), keyring_from_pem(public_pem(SigningKey.new(None, "ES256")))):
        with pytest.raises(Refused, match=says):
            choose(keyring, header)


def test_a_key_of_one_curve_does_not_verify_another_curves_algorithm() -> None:
    p256 = keyring_from_pem(public_pem(SigningKey.new(None, "ES256")))
    with pytest.raises(Refused, match="signed with ES384"):
        choose(p256, {"alg": "ES384"})
    with pytest.raises(Refused, match="signed with RS256"):
        choose(p256, {"alg": "RS256"})
    assert choose(keyring_from_secret("s" * 32), {"alg": "HS256", "kid": "x"})[0].algorithms == HMAC


@pytest.mark.parametrize(
    ("pem", "says"),
    [
        ("not a pem", "not a public key or certificate in PEM"),
        (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode(),
            "this is a private key",
        ),
        (public_pem(dsa.generate_private_key(2048)), "cannot verify tokens"),
        (public_pem(ed448.Ed448PrivateKey.generate()), "cannot verify tokens"),
        (public_pem(ec.generate_private_key(ec.SECP256K1())), "cannot verify tokens"),
    ],
)
def test_a_pem_that_cannot_verify_tokens_says_why(pem: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        keyring_from_pem(pem)


# Key sets: a token's kid picks the key.

ES = SigningKey.new("es-1", "ES256")
RS = SigningKey.new("rs-1", "RS256")
ED = SigningKey.new("ed-1", "EdDSA")


def test_a_key_set_picks_the_key_its_kid_names_with_that_keys_algorithm() -> None:
    keyring, skipped = keyring_from_jwks({"keys": [ES.jwk(), RS.jwk(), ED.jwk()]})
    assert keyring.kids == ("es-1", "rs-1", "ed-1") and skipped == []
    for signer in (ES, RS, ED):
        assert verified(keyring, signer.token())["topics"] == ["todos"]
    with pytest.raises(Refused, match="signed with ES256, which key 'rs-1' \\(RS256\\)"):
        choose(keyring, {"alg": "ES256", "kid": "rs-1"})
    with pytest.raises(UnknownKey) as unknown:
        choose(keyring, {"alg": "ES256", "kid": "es-2"})
    assert unknown.value.kid == "es-2"


def test_a_jwk_alg_narrows_its_key_to_that_algorithm_and_without_one_the_key_type_decides() -> None:
    with_alg, _ = keyring_from_jwks({"keys": [RS.jwk()]})
    without, _ = keyring_from_jwks({"keys": [RS.jwk(with_alg=False)]})
    assert with_alg.keys[0].algorithms == {"RS256"} and without.keys[0].algorithms == RSA
    with pytest.raises(Refused):
        choose(with_alg, {"alg": "PS256", "kid": "rs-1"})
    assert choose(without, {"alg": "PS256", "kid": "rs-1"})[1] == "PS256"


def test_a_token_without_kid_needs_exactly_one_key_of_its_algorithm() -> None:
    keyring, _ = keyring_from_jwks({"keys": [ES.jwk(), RS.jwk()]})
    assert verified(keyring, ES.token(kid=None)) and verified(keyring, RS.token(kid=None))
    two, _ = keyring_from_jwks({"keys": [ES.jwk(), SigningKey.new("es-2").jwk()]})
    with pytest.raises(Refused, match="names no kid and 2 keys of the set verify ES256"):
        choose(two, {"alg": "ES256"})


def test_a_jwk_without_kid_stands_for_any_kid() -> None:
    anonymous = SigningKey.new(None, "EdDSA")
    keyring, _ = keyring_from_jwks({"keys": [anonymous.jwk()]})
    assert verified(keyring, anonymous.token(kid="named-by-the-issuer"))


@pytest.mark.parametrize(
    ("jwk", "says"),
    [
        ({"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}, "kty 'oct'"),
        ({**RS.jwk(), "use": "enc", "kid": "enc"}, "use 'enc'"),
        ({**RS.jwk(), "alg": "ES256", "kid": "mixed"}, "alg 'ES256' does not go with kty 'RSA'"),
        ({**RS.jwk(), "alg": ["RS256"], "kid": "list"}, "does not go with"),
        ({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"}, "crv 'secp256k1'"),
        ({"kty": "EC", "crv": ["P-256"], "kid": "crv-list"}, "does not verify tokens here"),
        ({"kty": "OKP", "crv": "Ed448", "x": "AA", "kid": "ed448"}, "crv 'Ed448'"),
        ({"kty": "RSA", "kid": "no-n"}, "'no-n'"),
        ({"kty": "RSA", "n": 5, "e": "AQAB", "kid": "n-int"}, "'n-int'"),
        ({**ES.jwk(), "kid": 5}, "kid is not a string"),
        ("a string", "not a JSON object"),
    ],
)
def test_a_key_the_gateway_cannot_use_is_left_out_with_its_reason(jwk: object, says: str) -> None:
    keyring, skipped = keyring_from_jwks({"keys": [jwk, ES.jwk()]})
    assert keyring.kids == ("es-1",)
    assert len(skipped) == 1 and says in skipped[0], skipped


@pytest.mark.parametrize(
    "document",
    [[], {"keys": "nope"}, {"not": "keys"}, {"keys": []}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "text", None],
)
def test_a_document_without_a_usable_key_is_not_a_key_set(document: object) -> None:
    with pytest.raises(ValueError, match=r"not a JWK set|no key of the set"):
        keyring_from_jwks(document)


def test_a_key_set_that_leaks_a_private_key_is_used_for_its_public_half() -> None:
    leaked = jwt.algorithms.ECAlgorithm.to_jwk(ES.private, as_dict=True) | {"kid": "es-1"}
    keyring, _ = keyring_from_jwks({"keys": [leaked]})
    assert isinstance(keyring.keys[0].key, ec.EllipticCurvePublicKey)
    assert verified(keyring, ES.token())


def test_duplicate_kids_of_one_algorithm_are_refused_rather_than_guessed() -> None:
    twin = SigningKey.new("es-1")
    keyring = Keyring(
        (
            VerifyKey(ES.private.public_key(), frozenset({"ES256"}), "es-1"),
            *keyring_from_jwks({"keys": [twin.jwk()]})[0].keys,
        )
    )
    with pytest.raises(Refused, match="2 keys 'es-1'"):
        choose(keyring, {"alg": "ES256", "kid": "es-1"})


def test_a_certificate_pem_verifies_with_its_public_key() -> None:
    """Auth0 offers its signing key as a certificate; the gateway takes the key inside."""
    signer = SigningKey.new("cert", "RS256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(signer.private, hashes.SHA256())  # type: ignore[arg-type]
    )
    keyring = keyring_from_pem(certificate.public_bytes(serialization.Encoding.PEM).decode())
    assert keyring.keys[0].algorithms == RSA and verified(keyring, signer.token())
