"""POST/GET /v1/customers[/{id}]."""

from __future__ import annotations

from stripe.params import CustomerCreateParams, CustomerListParams, CustomerUpdateParams

from stripe_sandbox import objects
from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.forms import Params, read_int, read_metadata, read_str, reject_unknown
from stripe_sandbox.objects import Obj
from stripe_sandbox.state import SandboxState

__all__ = ["create_customer", "list_customers", "retrieve_customer", "update_customer"]


def create_customer(state: SandboxState, params: Params, *, now: int) -> Obj:
    reject_unknown(params, CustomerCreateParams)
    customer = objects.customer(
        created=now,
        email=_email(params),
        name=read_str(params, "name"),
        description=read_str(params, "description"),
        phone=read_str(params, "phone"),
        metadata=read_metadata(params),
    )
    state.customers[customer["id"]] = customer
    return customer


def retrieve_customer(state: SandboxState, customer_id: str) -> Obj:
    customer = state.customers.get(customer_id)
    if customer is None:
        raise resource_missing("customer", customer_id)
    return customer


def update_customer(state: SandboxState, customer_id: str, params: Params) -> Obj:
    reject_unknown(params, CustomerUpdateParams)
    customer = retrieve_customer(state, customer_id)
    for name in ("name", "description", "phone"):
        if name in params:
            customer[name] = read_str(params, name)
    if "email" in params:
        customer["email"] = _email(params)
    if "metadata" in params:
        # Stripe merges metadata; an empty value removes that key, an empty object clears all.
        updates = params["metadata"]
        if updates == "":
            customer["metadata"] = {}
        else:
            merged = {**customer["metadata"], **(updates if isinstance(updates, dict) else {})}
            read_metadata({"metadata": merged})
            customer["metadata"] = {key: value for key, value in merged.items() if value != ""}
    return customer


def list_customers(state: SandboxState, params: Params) -> tuple[list[Obj], bool]:
    reject_unknown(params, CustomerListParams)
    email = read_str(params, "email")
    limit = read_int(params, "limit", minimum=1, maximum=100) or 10
    found = [c for c in state.customers.values() if email is None or c["email"] == email]
    found.reverse()
    return found[:limit], len(found) > limit


def _email(params: Params) -> str | None:
    email = read_str(params, "email")
    if email is not None and ("@" not in email or len(email) > 512):
        raise invalid_request(
            f"Invalid email address: {email}", param="email", code="email_invalid"
        )
    return email
