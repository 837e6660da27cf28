"""``/billing/subscriptions`` and ``/billing/portal-sessions``: the signed-in user's subscriptions,
cancel and resume, and a Stripe Customer Portal session. Someone else's subscription is a 404.
Each handler is one call into ``subscriptions.py``; the writes are marked ``WRITES_TO_STRIPE``."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from facturation_service.billing_mode import WRITES_TO_STRIPE
from facturation_service.subscriptions import Subscriptions, SubscriptionView
from shared import Identity, provide_identity

__all__ = [
    "ROUTE_HANDLERS",
    "CancelRequest",
    "PortalSessionRequest",
    "PortalSessionResponse",
    "SubscriptionList",
]


class SubscriptionList(msgspec.Struct):
    data: list[SubscriptionView]


class CancelRequest(msgspec.Struct, forbid_unknown_fields=True):
    at_period_end: bool = True
    """``true``: it ends when the paid period does; ``false``: it ends now."""


class PortalSessionRequest(msgspec.Struct, forbid_unknown_fields=True):
    return_url: str | None = None


class PortalSessionResponse(msgspec.Struct):
    url: str


_with_user = {"identity": Provide(provide_identity)}
_WRITES = {WRITES_TO_STRIPE: True}
_SubscriptionId = Annotated[str, PathParameter(max_length=255)]


@get("/billing/subscriptions", dependencies=_with_user)
async def list_subscriptions(
    identity: NamedDependency[Identity], subscriptions: NamedDependency[Subscriptions]
) -> SubscriptionList:
    return SubscriptionList(data=await subscriptions.list_for(identity.user_id))


@post(
    "/billing/subscriptions/{subscription_id:str}/cancel",
    dependencies=_with_user,
    status_code=HTTP_200_OK,
    opt=_WRITES,
)
async def cancel_subscription(
    subscription_id: _SubscriptionId,
    identity: NamedDependency[Identity],
    subscriptions: NamedDependency[Subscriptions],
    data: JSONBody[CancelRequest | None] = None,
) -> SubscriptionView:
    at_period_end = True if data is None else data.at_period_end
    return await subscriptions.cancel(
        identity.user_id, subscription_id, at_period_end=at_period_end
    )


@post(
    "/billing/subscriptions/{subscription_id:str}/resume",
    dependencies=_with_user,
    status_code=HTTP_200_OK,
    opt=_WRITES,
)
async def resume_subscription(
    subscription_id: _SubscriptionId,
    identity: NamedDependency[Identity],
    subscriptions: NamedDependency[Subscriptions],
) -> SubscriptionView:
    return await subscriptions.resume(identity.user_id, subscription_id)


@post(
    "/billing/portal-sessions", dependencies=_with_user, status_code=HTTP_201_CREATED, opt=_WRITES
)
async def create_portal_session(
    identity: NamedDependency[Identity],
    subscriptions: NamedDependency[Subscriptions],
    data: JSONBody[PortalSessionRequest | None] = None,
) -> PortalSessionResponse:
    url = await subscriptions.portal_session(
        identity.user_id, None if data is None else data.return_url
    )
    return PortalSessionResponse(url=url)


ROUTE_HANDLERS = [
    list_subscriptions,
    cancel_subscription,
    resume_subscription,
    create_portal_session,
]
