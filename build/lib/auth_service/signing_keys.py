"""Ed25519 signing keys: PEM loading, the JWK form published at ``/auth/jwks.json`` and the
RFC 7638 thumbprint used as ``kid``."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from shared import SettingsError

__all__ = ["ALGORITHM", "KeyRing", "VerificationKey", "generate_private_key_pem"]

ALGORITHM = "EdDSA"


def generate_private_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem_bytes(text: str) -> bytes:
    # One-line env files often carry a PEM with literal "\n" escapes.
    return text.strip().replace("\\n", "\n").encode()


def _load_private(pem: str) -> Ed25519PrivateKey:
    key = load_pem_private_key(_pem_bytes(pem), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError("not an Ed25519 key")
    return key


def _load_public(pem: str) -> Ed25519PublicKey:
    """A public key PEM, or a private one whose public half is taken."""
    if "PRIVATE KEY" in pem:
        return _load_private(pem).public_key()
    key = load_pem_public_key(_pem_bytes(pem))
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError("not an Ed25519 key")
    return key


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    key: Ed25519PublicKey
    jwk: dict[str, str]

    @classmethod
    def of(cls, key: Ed25519PublicKey) -> VerificationKey:
        x = _b64url(key.public_bytes(Encoding.Raw, PublicFormat.Raw))
        # RFC 7638: the required members only, sorted, no whitespace.
        canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
        kid = _b64url(hashlib.sha256(canonical.encode()).digest())
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}
        return cls(kid=kid, key=key, jwk=jwk)


@dataclass(frozen=True)
class KeyRing:
    """The current signing key and every public key still accepted (current first)."""

    signing_key: Ed25519PrivateKey
    signing_kid: str
    verification_keys: dict[str, VerificationKey] = field(default_factory=dict)

    @classmethod
    def from_pems(cls, private_pem: str, previous_public_pems: Iterable[str] = ()) -> KeyRing:
        """Raises:
        SettingsError: one line naming the variable whose PEM is not an Ed25519 key.
        """
        try:
            signing_key = _load_private(private_pem)
        except (ValueError, TypeError):
            raise SettingsError(
                "malformed setting JWT_PRIVATE_KEY: expected an Ed25519 private key in PEM"
            ) from None
        current = VerificationKey.of(signing_key.public_key())
        keys = {current.kid: current}
        for pem in previous_public_pems:
            try:
                previous = VerificationKey.of(_load_public(pem))
            except (ValueError, TypeError):
                raise SettingsError(
                    "malformed setting JWT_PREVIOUS_PUBLIC_KEYS: expected Ed25519 keys in PEM"
                ) from None
            keys.setdefault(previous.kid, previous)
        return cls(signing_key=signing_key, signing_kid=current.kid, verification_keys=keys)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk for key in self.verification_keys.values()]}
