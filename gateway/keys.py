"""Which key verifies a token, and with which algorithm: pure functions, no I/O.

Theory of operation. A key's type fixes the algorithms it may verify: the HS256
secret only HS256; an RSA public key RS256/384/512 and PS256/384/512; an EC key the
one ECDSA algorithm of its curve (P-256: ES256, P-384: ES384, P-521: ES512); an
Ed25519 key EdDSA. A JWK's ``alg``, when it has one, narrows that to the one it
names. A token's header says ``alg`` (and maybe ``kid``); :func:`choose` picks the
one key that allows that ``alg``, and the token is then decoded with that key and
that algorithm alone. So ``alg: none`` is refused (no key allows it), and so is the
classic algorithm confusion, an HS256 token whose HMAC key is the public key's PEM
text: no public key allows HS256.

A configured key (``GATEWAY_JWT_SECRET`` or ``GATEWAY_JWT_PUBLIC_KEY``) verifies a
token whatever ``kid`` it names. In a key set (``GATEWAY_JWT_JWKS_URL``) a token's
``kid`` picks the keys with that ``kid`` (a key without one stands for any); a kid
the set lacks is :class:`UnknownKey`, on which the caller may fetch the set again.
A token without ``kid`` needs exactly one key of the set to allow its ``alg``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HMAC = frozenset({"HS256"})
RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EDDSA = frozenset({"EdDSA"})
# A JWK's crv and the ECDSA algorithm of that curve; cryptography's curve name for a PEM's.
_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_PEM_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
ACCEPTED = HMAC | RSA | EDDSA | frozenset(_CURVES.values())


@dataclass(frozen=True)
class VerifyKey:
    """One key: a cryptography public key (or the HS256 secret's text), what it may verify."""

    key: Any
    algorithms: frozenset[str]
    kid: str | None = None  # None: any kid

    @property
    def described(self) -> str:
        name = f"key {self.kid!r}" if self.kid is not None else "the key"
        return f"{name} ({', '.join(sorted(self.algorithms))})"


@dataclass(frozen=True)
class Keyring:
    """The keys that may verify tokens. ``by_kid``: a key set, where a token's kid picks."""

    keys: tuple[VerifyKey, ...]
    by_kid: bool = True

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(k.kid for k in self.keys if k.kid is not None)


class Refused(ValueError):
    """The token cannot be verified by any key there is: a 401, with this message."""


class UnknownKey(LookupError):
    """The token names a kid the key set lacks (``kid`` None: there are no keys yet)."""

    def __init__(self, kid: str | None) -> None:
        super().__init__(kid)
        self.kid = kid


def choose(keyring: Keyring, header: Mapping[str, Any]) -> tuple[VerifyKey, str]:
    """The key that verifies a token with this (unverified) header, and its algorithm.

    Raises :class:`Refused` for a header no key can verify, :class:`UnknownKey` for a
    ``kid`` the set does not have.
    """
    alg, kid = read_header(header)
    candidates = keyring.keys
    if keyring.by_kid and kid is not None:
        candidates = tuple(k for k in keyring.keys if k.kid == kid) or tuple(k for k in keyring.keys if k.kid is None)
        if not candidates:
            raise UnknownKey(kid)
    usable = [k for k in candidates if alg in k.algorithms]
    if len(usable) == 1:
        return usable[0], alg
    if not usable:
        described = "; ".join(k.described for k in candidates)
        raise Refused(f"the token is signed with {alg}, which {described} does not verify")
    if kid is not None:
        raise Refused(f"the key set has {len(usable)} keys {kid!r} for {alg}: it cannot say which")
    raise Refused(
        f"the token names no kid and {len(usable)} keys of the set verify {alg}; "
        "an issuer with several keys puts the kid in its tokens' header"
    )


def read_header(header: Mapping[str, Any]) -> tuple[str, str | None]:
    """A token header's ``alg`` (one a key here may allow) and ``kid``; Refused if not."""
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise Refused("the token's header names no algorithm (alg)")
    if alg.lower() == "none":
        raise Refused("an unsigned token (alg none) is never accepted")
    if alg not in ACCEPTED:
        raise Refused(f"the token's algorithm {alg!r} is not accepted; accepted: {', '.join(sorted(ACCEPTED))}")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Refused("the token's kid must be a string")
    return alg, kid


def keyring_from_secret(secret: str) -> Keyring:
    return Keyring((VerifyKey(secret, HMAC),), by_kid=False)


def keyring_from_pem(pem: str) -> Keyring:
    """A public key (or a certificate's) in PEM as a keyring; ValueError saying why not."""
    data = pem.strip().encode()
    if b"PRIVATE KEY-----" in data:
        raise ValueError("this is a private key; give its public key (openssl pkey -in key.pem -pubout)")
    public: object
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            public = x509.load_pem_x509_certificate(data).public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a public key or certificate in PEM ({exc})") from None
    algorithms = algorithms_of(public)
    if not algorithms:
        raise ValueError(f"a {type(public).__name__.removeprefix('_')} cannot verify tokens: use RSA, EC or Ed25519")
    return Keyring((VerifyKey(public, algorithms),), by_kid=False)


def algorithms_of(public: object) -> frozenset[str]:
    """What a cryptography public key may verify: by its type (and an EC key's curve)."""
    if isinstance(public, rsa.RSAPublicKey):
        return RSA
    if isinstance(public, ed25519.Ed25519PublicKey):
        return EDDSA
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name in _PEM_CURVES:
        return frozenset({_CURVES[_PEM_CURVES[public.curve.name]]})
    return frozenset()


def keyring_from_jwks(document: object) -> tuple[Keyring, list[str]]:
    """A JWK Set (RFC 7517) as a keyring, and why each key left out was.

    Keys for encryption (``use: enc``), symmetric ones (``kty: oct``: a key set is
    public) and types or curves not listed above are left out; a set with no key left
    is a ValueError, as is a document that is not a set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set: a JSON object with a 'keys' list")
    keys: list[VerifyKey] = []
    skipped: list[str] = []
    for index, jwk in enumerate(document["keys"]):
        try:
            keys.append(_from_jwk(jwk))
        except ValueError as exc:
            kid = jwk.get("kid") if isinstance(jwk, dict) else None
            skipped.append(f"{kid!r}: {exc}" if isinstance(kid, str) else f"key {index}: {exc}")
    if not keys:
        reasons = "; ".join(skipped) if skipped else "the set is empty"
        raise ValueError(f"no key of the set can verify tokens ({reasons})")
    return Keyring(tuple(keys)), skipped


def _from_jwk(jwk: object) -> VerifyKey:
    if not isinstance(jwk, dict):
        raise ValueError("not a JSON object")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise ValueError("its kid is not a string")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"use {jwk.get('use')!r}, not sig")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    family = _family(kty, crv)
    if not family:
        raise ValueError(f"kty {kty!r}" + (f" crv {crv!r}" if crv is not None else "") + " does not verify tokens here")
    alg = jwk.get("alg")
    if alg is not None:
        if not isinstance(alg, str) or alg not in family:
            raise ValueError(f"alg {alg!r} does not go with kty {kty!r}")
        family = frozenset({alg})
    try:
        key = jwt.PyJWK(jwk, algorithm=min(family)).key
    except jwt.PyJWTError as exc:
        raise ValueError(str(exc)) from None
    public = key.public_key() if hasattr(key, "public_key") else key  # a set that leaks a private key
    return VerifyKey(public, family, kid)


def _family(kty: object, crv: object) -> frozenset[str]:
    if kty == "RSA":
        return RSA
    if kty == "EC" and isinstance(crv, str) and crv in _CURVES:
        return frozenset({_CURVES[crv]})
    if kty == "OKP" and crv == "Ed25519":
        return EDDSA
    return frozenset()


def describe(keys: Iterable[VerifyKey]) -> str:
    """The keys as a log line names them: ``'k1' (ES256), 'k2' (RS256, ...)``."""
    return ", ".join(f"{k.kid!r} ({', '.join(sorted(k.algorithms))})" for k in keys) or "none"
