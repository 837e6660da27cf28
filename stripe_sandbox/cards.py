"""Stripe's test cards: what paying with each one does."""

from __future__ import annotations

import time

from stripe_sandbox.errors import card_error

__all__ = [
    "DECLINED_CARD",
    "FAILS_LATER_CARD",
    "SUCCEEDING_CARD",
    "charge_succeeds",
    "check_card",
    "check_number",
]

SUCCEEDING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
FAILS_LATER_CARD = "4000000000000341"
"""Attaches to a customer (``POST /sandbox/customers/{id}/card``), but every charge fails."""
_DECLINES = {
    DECLINED_CARD: ("generic_decline", "Your card was declined."),
    FAILS_LATER_CARD: ("generic_decline", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("lost_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "Your card has expired."),
}


def _luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def check_number(number: str) -> str:
    """The digits of a well-formed card number; card_error ``incorrect_number`` otherwise."""
    digits = "".join(number.split())
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_valid(digits):
        raise card_error("Your card number is incorrect.", code="incorrect_number", param="number")
    return digits


def charge_succeeds(number: str) -> bool:
    """Whether charging this (well-formed) card pays, as a renewal does."""
    return "".join(number.split()) not in _DECLINES


def check_card(number: str, exp_month: int, exp_year: int, cvc: str) -> None:
    """Raise the card_error Stripe would give; return if the payment succeeds.

    Any other number passing the Luhn check pays, like 4242 4242 4242 4242.
    """
    digits = check_number(number)
    if not 1 <= exp_month <= 12:
        raise card_error(
            "Your card's expiration month is invalid.",
            code="invalid_expiry_month",
            param="exp_month",
        )
    year = exp_year + 2000 if exp_year < 100 else exp_year
    now = time.gmtime()
    if (year, exp_month) < (now.tm_year, now.tm_mon):
        raise card_error(
            "Your card's expiration year is invalid.",
            code="invalid_expiry_year",
            param="exp_year",
        )
    if not cvc.isdigit() or len(cvc) not in (3, 4):
        raise card_error("Your card's security code is invalid.", code="invalid_cvc", param="cvc")
    decline = _DECLINES.get(digits)
    if decline is not None:
        decline_code, message = decline
        code = "expired_card" if decline_code == "expired_card" else "card_declined"
        raise card_error(message, code=code, decline_code=decline_code)
