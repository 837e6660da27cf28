"""Charges, refunds and disputes (API version 2026-10-28.endive), as plain JSON-ready dicts, and
what refunding and disputing a charge do to the sandbox's state.

::

    checkout paid ──► payment_intent (latest_charge) ──► charge
    POST /v1/refunds ──► refund (succeeded) ──► refund.created, charge.refunded
    POST /sandbox/charges/{id}/dispute ──► dispute ──► charge.dispute.created,
                                                        charge.dispute.closed (won | lost)
"""

from __future__ import annotations

import copy

from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.objects import Obj, new_id
from stripe_sandbox.state import SandboxState

__all__ = [
    "DISPUTE_EVIDENCE_FIELDS",
    "charge",
    "charge_for_intent",
    "create_refund",
    "dispute",
    "open_and_close_dispute",
    "refund",
]


def charge(
    *,
    charge_id: str,
    created: int,
    amount: int,
    currency: str,
    customer_id: str | None,
    payment_intent: str | None,
    payment_method: str | None,
    email: str | None = None,
    name: str | None = None,
) -> Obj:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn_"),
        "billing_details": {
            "address": {
                "city": None,
                "country": "FR",
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": email,
            "name": name,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "FACTURATION DEMO",
        "captured": True,
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "description": None,
        "destination": None,
        "dispute": None,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": payment_intent,
        "payment_method": payment_method,
        "payment_method_details": {
            "card": {
                "amount_authorized": amount,
                "authorization_code": None,
                "brand": "visa",
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "extended_authorization": {"status": "disabled"},
                "fingerprint": new_id("", 16),
                "funding": "credit",
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": "4242",
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": "visa",
                "network_token": {"used": False},
                "network_transaction_id": new_id("", 15),
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": "unregulated",
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "presentment_details": None,
        "radar_options": {},
        "receipt_email": email,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{new_id('', 40)}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    created: int,
    amount: int,
    currency: str,
    charge_id: str,
    payment_intent: str | None,
    status: str = "succeeded",
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
    refund_id: str | None = None,
) -> Obj:
    return {
        "id": refund_id or new_id("re_"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_") if status == "succeeded" else None,
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "failure_balance_transaction": None,
        "failure_reason": "declined" if status == "failed" else None,
        "metadata": metadata or {},
        "payment_intent": payment_intent,
        "pending_reason": None,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


DISPUTE_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)


def dispute(
    *,
    created: int,
    amount: int,
    currency: str,
    charge_id: str,
    payment_intent: str | None,
    status: str = "needs_response",
    reason: str = "fraudulent",
    dispute_id: str | None = None,
) -> Obj:
    evidence: Obj = dict.fromkeys(DISPUTE_EVIDENCE_FIELDS)
    evidence["enhanced_evidence"] = {}
    return {
        "id": dispute_id or new_id("du_"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": reason,
        "status": status,
    }


def charge_for_intent(state: SandboxState, intent: Obj, *, now: int) -> Obj:
    """The charge a succeeded payment intent names as ``latest_charge``, stored."""
    customer = state.customers.get(intent["customer"] or "") or {}
    made = charge(
        charge_id=intent["latest_charge"],
        created=now,
        amount=intent["amount"],
        currency=intent["currency"],
        customer_id=intent["customer"],
        payment_intent=intent["id"],
        payment_method=intent["payment_method"],
        email=customer.get("email"),
        name=customer.get("name"),
    )
    state.charges[made["id"]] = made
    return made


def _charge_of(state: SandboxState, charge_id: str | None, intent_id: str | None) -> Obj:
    if charge_id is not None:
        found = state.charges.get(charge_id)
        if found is None:
            raise resource_missing("charge", charge_id, param="charge")
        return found
    if intent_id is None:
        raise invalid_request("One of `charge` or `payment_intent` is required.")
    intent = state.payment_intents.get(intent_id)
    if intent is None:
        raise resource_missing("payment_intent", intent_id, param="payment_intent")
    found = state.charges.get(intent["latest_charge"])
    if found is None:
        raise invalid_request(
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            param="payment_intent",
        )
    return found


def create_refund(
    state: SandboxState,
    *,
    charge_id: str | None,
    intent_id: str | None,
    amount: int | None,
    reason: str | None,
    metadata: dict[str, str],
    now: int,
) -> tuple[Obj, list[tuple[str, Obj]]]:
    """Refund (part of) a charge as Stripe does for a card: succeeded at once, with the errors
    Stripe gives for a charge already refunded and an amount above what is left."""
    target = _charge_of(state, charge_id, intent_id)
    if target["refunded"]:
        raise invalid_request(
            f"Charge {target['id']} has already been refunded.", code="charge_already_refunded"
        )
    left = target["amount"] - target["amount_refunded"]
    amount = left if amount is None else amount
    if amount <= 0:
        raise invalid_request("Invalid positive integer", param="amount")
    if amount > left:
        raise invalid_request(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
            param="amount",
            code="amount_too_large",
        )
    made = refund(
        created=now,
        amount=amount,
        currency=target["currency"],
        charge_id=target["id"],
        payment_intent=target["payment_intent"],
        reason=reason,
        metadata=metadata,
    )
    state.refunds[made["id"]] = made
    target["amount_refunded"] += amount
    target["refunded"] = target["amount_refunded"] >= target["amount"]
    return made, [
        ("refund.created", copy.deepcopy(made)),
        ("charge.refunded", copy.deepcopy(target)),
    ]


def open_and_close_dispute(
    state: SandboxState, charge_id: str, *, outcome: str, now: int
) -> tuple[Obj, list[tuple[str, Obj]]]:
    """A chargeback on the charge, then its outcome: the two events Stripe sends weeks apart."""
    target = state.charges.get(charge_id)
    if target is None:
        raise resource_missing("charge", charge_id)
    if outcome not in ("won", "lost"):
        raise invalid_request("outcome must be 'won' or 'lost'.", param="outcome")
    if target["disputed"]:
        raise invalid_request(
            f"Charge {charge_id} has already been disputed.", code="charge_disputed"
        )
    opened = dispute(
        created=now,
        amount=target["amount"] - target["amount_refunded"],
        currency=target["currency"],
        charge_id=charge_id,
        payment_intent=target["payment_intent"],
    )
    target.update(disputed=True, dispute=opened["id"])
    created_snapshot = copy.deepcopy(opened)
    opened["status"] = outcome
    state.disputes[opened["id"]] = opened
    return opened, [
        ("charge.dispute.created", created_snapshot),
        ("charge.dispute.closed", copy.deepcopy(opened)),
    ]
