"""Catalog, basket, Stripe customer and checkout routes (paths as the gateway forwards them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from litestar import Request, Response, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from facturation_service import checkout, customers
from facturation_service.auth_client import AuthClient, AuthUser
from facturation_service.basket import price_basket
from facturation_service.billing_mode import stripe_writes_allowed
from facturation_service.catalog import Catalog
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
from facturation_service.settings import FacturationSettings
from facturation_service.stripe_api import StripeApi
from shared import USER_EMAIL_HEADER, USER_ID_HEADER, Database, UnauthorizedError

__all__ = ["ROUTE_HANDLERS", "Identity", "provide_identity"]

_USER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the gateway says is calling; believed only because the internal-token guard passed."""

    user_id: str
    email: str | None


async def provide_identity(request: Request[object, object, State]) -> Identity:
    user_id = request.headers.get(USER_ID_HEADER, "")
    if not _USER_ID.fullmatch(user_id):
        raise UnauthorizedError("This route needs a signed-in user.")
    return Identity(user_id=user_id, email=request.headers.get(USER_EMAIL_HEADER))


@dataclass(frozen=True, slots=True)
class Services:
    database: Database
    stripe: StripeApi
    auth: AuthClient
    catalog: Catalog
    settings: FacturationSettings
    customer_locks: customers.UserLocks
    known_customers: customers.KnownCustomers


async def provide_services(state: State) -> Services:
    return Services(
        database=state.database,
        stripe=state.stripe,
        auth=state.auth,
        catalog=state.catalog,
        settings=state.settings,
        customer_locks=state.customer_locks,
        known_customers=state.known_customers,
    )


_with_user = {"identity": Provide(provide_identity), "services": Provide(provide_services)}


@get("/products", dependencies={"services": Provide(provide_services)})
async def list_products(services: NamedDependency[Services]) -> ProductList:
    return ProductList(products=services.catalog.products)


@post("/basket/validate", dependencies=_with_user, status_code=HTTP_200_OK)
async def validate_basket(
    data: JSONBody[BasketRequest],
    identity: NamedDependency[Identity],
    services: NamedDependency[Services],
) -> BasketResponse:
    basket = price_basket(services.catalog, data.items)
    user: AuthUser = await services.auth.get_user(identity.user_id)
    return BasketResponse(
        lines=basket.lines,
        amount_total=basket.amount_total,
        currency=basket.currency,
        user=user,
        needs_stripe_customer=user.user_stripe_id is None,
    )


# Issue 12 hook: every route that writes to Stripe carries the billing-mode guard.
@post("/billing/customer", dependencies=_with_user, guards=[stripe_writes_allowed])
async def create_customer(
    identity: NamedDependency[Identity], services: NamedDependency[Services]
) -> Response[CustomerResponse]:
    ensured = await customers.ensure_customer(
        services.database,
        services.stripe,
        services.auth,
        services.customer_locks,
        services.known_customers,
        identity.user_id,
    )
    return Response(
        CustomerResponse(user_id=identity.user_id, user_stripe_id=ensured.user_stripe_id),
        status_code=HTTP_201_CREATED if ensured.created else HTTP_200_OK,
    )


@put("/users/me/stripe-customer", dependencies=_with_user)
async def store_stripe_customer(
    data: JSONBody[StripeCustomerUpdate],
    identity: NamedDependency[Identity],
    services: NamedDependency[Services],
) -> CustomerResponse:
    await customers.confirm_customer_in_auth(
        services.database, services.auth, identity.user_id, data.user_stripe_id
    )
    return CustomerResponse(user_id=identity.user_id, user_stripe_id=data.user_stripe_id)


@post("/billing/checkout-sessions", dependencies=_with_user, guards=[stripe_writes_allowed])
async def create_checkout_session(
    data: JSONBody[CheckoutRequest],
    identity: NamedDependency[Identity],
    services: NamedDependency[Services],
) -> Response[CheckoutResponse]:
    basket = price_basket(services.catalog, data.items)
    return_url = checkout.checkout_return_url(
        data.return_url,
        services.settings.checkout_return_origins,
        services.settings.checkout_default_return_path,
    )
    if basket.is_free:
        response = await checkout.complete_free_order(
            services.database, basket, user_id=identity.user_id
        )
    else:
        ensured = await customers.ensure_customer(
            services.database,
            services.stripe,
            services.auth,
            services.customer_locks,
            services.known_customers,
            identity.user_id,
        )
        response = await checkout.open_checkout_session(
            services.database,
            services.stripe,
            basket,
            user_id=identity.user_id,
            user_stripe_id=ensured.user_stripe_id,
            return_url=return_url,
        )
    return Response(response, status_code=HTTP_201_CREATED)


@get("/billing/checkout-sessions/{checkout_id:str}", dependencies=_with_user)
async def get_checkout_session(
    checkout_id: Annotated[FromPath[str], Parameter(max_length=255)],
    identity: NamedDependency[Identity],
    services: NamedDependency[Services],
) -> CheckoutStatus:
    return await checkout.checkout_status(
        services.database, services.stripe, user_id=identity.user_id, checkout_id=checkout_id
    )


ROUTE_HANDLERS = [
    list_products,
    validate_basket,
    create_customer,
    store_stripe_customer,
    create_checkout_session,
    get_checkout_session,
]
