"""The invoice transitions: pure, in Stripe's order, with the events Stripe sends for each."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import stripe

from stripe_sandbox import invoice_lifecycle, objects
from stripe_sandbox.errors import StripeApiError
from stripe_sandbox.objects import Obj


def draft() -> Obj:
    buyer = objects.customer(
        created=100, email="ada@example.com", name="Ada", description=None, phone=None, metadata={}
    )
    item = objects.checkout_line_item(
        currency="eur", unit_amount=1250, quantity=2, name="Guide", description=None, created=100
    )
    return objects.invoice(
        created=100,
        customer_obj=buyer,
        currency="eur",
        items=[item],
        description=None,
        metadata={},
        account_country="FR",
        account_name="Test",
    )


def opened() -> Obj:
    return invoice_lifecycle.finalize(
        draft(), at=101, number="ABC-0001", hosted_invoice_url="https://pay.example/in"
    ).invoice


def test_finalize_numbers_the_draft_and_opens_it_without_changing_the_input() -> None:
    invoice = draft()
    before = copy.deepcopy(invoice)

    step = invoice_lifecycle.finalize(
        invoice, at=101, number="ABC-0001", hosted_invoice_url="https://pay.example/in"
    )

    assert invoice == before
    assert step.events == ("invoice.finalized",)
    assert (step.invoice["status"], step.invoice["number"]) == ("open", "ABC-0001")
    assert step.invoice["status_transitions"]["finalized_at"] == 101
    assert step.invoice["hosted_invoice_url"] == "https://pay.example/in"
    assert step.invoice["amount_remaining"] == 2500


def test_pay_settles_the_amount_due_and_emits_paid_then_payment_succeeded() -> None:
    step = invoice_lifecycle.pay(opened(), at=102)

    assert step.events == ("invoice.paid", "invoice.payment_succeeded")
    paid = step.invoice
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", 2500, 0)
    assert (paid["attempted"], paid["attempt_count"]) == (True, 1)
    assert paid["status_transitions"]["paid_at"] == 102
    [(first, snapshot), (second, again)] = step.snapshots()
    assert (first, second) == step.events
    assert snapshot == again == paid
    assert snapshot is not again


def test_a_failed_attempt_leaves_the_invoice_open_and_counts_the_attempt() -> None:
    failed = invoice_lifecycle.fail_payment(opened(), at=102)
    paid = invoice_lifecycle.pay(failed.invoice, at=103)

    assert failed.events == ("invoice.payment_failed",)
    assert (failed.invoice["status"], failed.invoice["attempt_count"]) == ("open", 1)
    assert paid.invoice["attempt_count"] == 2


def test_void_cancels_what_is_owed_and_keeps_the_number() -> None:
    step = invoice_lifecycle.void(opened(), at=102)

    assert step.events == ("invoice.voided",)
    assert (step.invoice["status"], step.invoice["amount_remaining"]) == ("void", 0)
    assert step.invoice["amount_paid"] == 0
    assert step.invoice["number"] == "ABC-0001"
    assert step.invoice["status_transitions"]["voided_at"] == 102


def test_an_uncollectible_invoice_can_still_be_paid() -> None:
    written_off = invoice_lifecycle.mark_uncollectible(opened(), at=102)
    paid = invoice_lifecycle.pay(written_off.invoice, at=103)

    assert written_off.events == ("invoice.marked_uncollectible",)
    assert written_off.invoice["status_transitions"]["marked_uncollectible_at"] == 102
    assert paid.invoice["status"] == "paid"


def _finalize(invoice: Obj, *, at: int) -> invoice_lifecycle.Step:
    return invoice_lifecycle.finalize(invoice, at=at, number="X", hosted_invoice_url="https://x")


@pytest.mark.parametrize(
    ("invoice", "move"),
    [
        (draft(), invoice_lifecycle.pay),
        (draft(), invoice_lifecycle.void),
        (opened(), _finalize),
        (invoice_lifecycle.pay(opened(), at=1).invoice, invoice_lifecycle.pay),
        (invoice_lifecycle.pay(opened(), at=1).invoice, invoice_lifecycle.void),
        (invoice_lifecycle.void(opened(), at=1).invoice, invoice_lifecycle.pay),
    ],
)
def test_a_move_the_status_does_not_allow_is_a_stripe_error(
    invoice: Obj, move: Callable[..., invoice_lifecycle.Step]
) -> None:
    with pytest.raises(StripeApiError) as caught:
        move(invoice, at=1)

    assert caught.value.status == 400


def test_every_state_parses_as_a_stripe_invoice() -> None:
    states = [draft(), opened()]
    states.append(invoice_lifecycle.pay(states[1], at=102).invoice)
    states.append(invoice_lifecycle.void(states[1], at=102).invoice)
    states.append(invoice_lifecycle.mark_uncollectible(states[1], at=102).invoice)

    parsed = [stripe.Invoice.construct_from(state, "sk_test_unit") for state in states]

    assert [invoice.status for invoice in parsed] == [
        "draft",
        "open",
        "paid",
        "void",
        "uncollectible",
    ]
