"""Catalog, basket, Stripe customer and checkout_session routes (paths as the gateway forwards
them). Each handler is one call into its domain module: ``checkout.py`` or ``customers.py``."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from facturation_service.auth_client import AuthApi
from facturation_service.billing_mode import WRITES_TO_STRIPE
from facturation_service.catalog import Catalog
from facturation_service.checkout import Checkout
from facturation_service.customers import Customers
from facturation_service.schemas import (
    BasketRequest,
    BasketResponse,
    CheckoutRequest,
    CheckoutResponse,
    CheckoutStatus,
    CustomerResponse,
    ProductList,
    StripeCustomerUpdate,
)
from shared import Identity, provide_identity

__all__ = ["ROUTE_HANDLERS"]


_with_user = {"identity": Provide(provide_identity)}


@get("/products")
async def list_products(catalog: NamedDependency[Catalog]) -> ProductList:
    return ProductList(products=catalog.products)


@post("/basket/validate", dependencies=_with_user, status_code=HTTP_200_OK)
async def validate_basket(
    data: JSONBody[BasketRequest],
    identity: NamedDependency[Identity],
    checkout: NamedDependency[Checkout],
    auth: NamedDependency[AuthApi],
) -> BasketResponse:
    basket = checkout.price(data.items)
    user = await auth.get_user(identity.user_id)
    return BasketResponse(
        lines=basket.lines,
        amount_total=basket.amount_total,
        currency=basket.currency,
        user=user,
        needs_stripe_customer=user.user_stripe_id is None,
    )


_WRITES = {WRITES_TO_STRIPE: True}
"""Every route that writes to Stripe is marked: the billing-mode guard refuses it unless ``on``."""


@post("/billing/customer", dependencies=_with_user, opt=_WRITES)
async def create_customer(
    identity: NamedDependency[Identity], customers: NamedDependency[Customers]
) -> Response[CustomerResponse]:
    ensured = await customers.ensure_customer(identity.user_id)
    return Response(
        CustomerResponse(user_id=identity.user_id, user_stripe_id=ensured.user_stripe_id),
        status_code=HTTP_201_CREATED if ensured.created else HTTP_200_OK,
    )


@put("/users/me/stripe-customer", dependencies=_with_user)
async def store_stripe_customer(
    data: JSONBody[StripeCustomerUpdate],
    identity: NamedDependency[Identity],
    customers: NamedDependency[Customers],
) -> CustomerResponse:
    await customers.confirm_customer_in_auth(identity.user_id, data.user_stripe_id)
    return CustomerResponse(user_id=identity.user_id, user_stripe_id=data.user_stripe_id)


@post(
    "/billing/checkout-sessions", dependencies=_with_user, status_code=HTTP_201_CREATED, opt=_WRITES
)
async def create_checkout_session(
    data: JSONBody[CheckoutRequest],
    identity: NamedDependency[Identity],
    checkout: NamedDependency[Checkout],
) -> CheckoutResponse:
    return await checkout.create_checkout_session(identity.user_id, data.items, data.return_url)


@get("/billing/checkout-sessions/{checkout_id:str}", dependencies=_with_user)
async def get_checkout_session(
    checkout_id: Annotated[FromPath[str], Parameter(max_length=255)],
    identity: NamedDependency[Identity],
    checkout: NamedDependency[Checkout],
) -> CheckoutStatus:
    return await checkout.checkout_status(identity.user_id, checkout_id)


ROUTE_HANDLERS = [
    list_products,
    validate_basket,
    create_customer,
    store_stripe_customer,
    create_checkout_session,
    get_checkout_session,
]
