"""A token issuer for tests: signing keys, and their JWK Set served by a real local aiohttp server.

The server counts the requests it answers (``requests``), so a test can say how often
the gateway fetched; what it answers is whatever the test sets (``keys``, or a
``broken`` body and status) at the moment of the request.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    kid: str | None
    private: PrivateKey
    alg: str

    @classmethod
    def new(cls, kid: str | None, alg: str = "ES256") -> SigningKey:
        private: PrivateKey
        if alg.startswith(("RS", "PS")):
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            private = ec.generate_private_key({"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg])
        return cls(kid, private, alg)

    def jwk(self, with_alg: bool = True) -> dict[str, Any]:
        """The public key as a JWK, as identity providers publish it."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            data = jwt.algorithms.ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = jwt.algorithms.OKPAlgorithm.to_jwk(public, as_dict=True)
        data["use"] = "sig"
        if self.kid is not None:
            data["kid"] = self.kid
        if with_alg:
            data["alg"] = self.alg
        return data

    def token(self, kid: str | None = "", **claims: object) -> str:
        """A token signed with this key; its header names ``kid`` (this key's by default, None: no kid)."""
        header_kid = self.kid if kid == "" else kid
        headers = {"kid": header_kid} if header_kid is not None else None
        body = {"exp": time.time() + 600, "topics": ["todos"], **claims}
        return jwt.encode(body, self.private, algorithm=self.alg, headers=headers)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Issuer:
    """The JWK Set endpoint: ``start()`` it on ``port``, change ``keys`` to rotate."""

    keys: list[SigningKey] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    cache_control: str | None = None
    broken: tuple[int, bytes] | None = None  # (status, body) instead of the set
    requests: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    async def _jwks(self, request: web.Request) -> web.Response:
        self.requests += 1
        headers = {"Cache-Control": self.cache_control} if self.cache_control else None
        if self.broken is not None:
            status, body = self.broken
            return web.Response(status=status, body=body, headers=headers, content_type="application/json")
        document = {"keys": [key.jwk() for key in self.keys]}
        return web.Response(text=json.dumps(document), headers=headers, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
