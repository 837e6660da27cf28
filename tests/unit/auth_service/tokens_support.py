"""Hand-made tokens for the security tests: each one wrong in exactly one way."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from auth_service.signing_keys import VerificationKey

ISSUER = "facturation-auth"
AUDIENCE = "facturation-api"


def private_key(pem: str) -> Ed25519PrivateKey:
    key = load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def kid_of(key: Ed25519PrivateKey) -> str:
    return VerificationKey.of(key.public_key()).kid


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "email": "ada@example.com",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def signed(key: Ed25519PrivateKey, payload: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": kid or kid_of(key)})


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], kid: str, signature: str = "") -> str:
    """``alg: none``; with a junk signature part too, so the header parser is not what stops it."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(payload)}.{signature}"
