"""``python -m auth_service.keys``: print a new Ed25519 private key PEM for ``JWT_PRIVATE_KEY``
(the dev stack stores one in .dev/ on first run)."""

from __future__ import annotations

from auth_service.signing_keys import generate_private_key_pem

if __name__ == "__main__":
    print(generate_private_key_pem(), end="")
