"""``GET /billing/invoices`` and ``GET /billing/invoices/{id}``: the signed-in user's invoices,
read through ``invoices.py``. Anyone else's invoice is a 404, never a 403."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.invoices import get_user_invoice, list_user_invoices
from facturation_service.schemas import InvoiceDetail, InvoicePage
from shared import Identity, provide_identity

__all__ = ["ROUTE_HANDLERS"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_with_user = {"identity": Provide(provide_identity)}


@get("/billing/invoices", dependencies=_with_user)
async def list_invoices(
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, QueryParameter(max_length=600, pattern="^[A-Za-z0-9_=-]+$")
    ] = None,
) -> InvoicePage:
    return await list_user_invoices(db_session, identity.user_id, limit=limit, cursor=cursor)


@get("/billing/invoices/{invoice_id:str}", dependencies=_with_user)
async def get_invoice(
    invoice_id: Annotated[str, PathParameter(max_length=255)],
    identity: NamedDependency[Identity],
    db_session: NamedDependency[AsyncSession],
) -> InvoiceDetail:
    return await get_user_invoice(db_session, identity.user_id, invoice_id)


ROUTE_HANDLERS = [list_invoices, get_invoice]
