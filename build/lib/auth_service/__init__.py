"""The auth service: users, argon2id passwords, EdDSA access tokens (issue, check, revoke), JWKS,
and each user's ``user_stripe_id``. Run it with ``python -m auth_service [serve|migrate]``."""

from auth_service.app import create_app, load
from auth_service.settings import AuthSettings
from auth_service.signing_keys import generate_private_key_pem

__all__ = ["AuthSettings", "create_app", "generate_private_key_pem", "load"]
