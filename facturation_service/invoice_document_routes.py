"""``GET /billing/invoices/{id}/pdf``: the signed-in user's invoice as a PDF document.

Served with its SHA-256 as the ETag, so a client that already holds this state's document gets
a 304 for ``If-None-Match``. Someone else's invoice is a 404, a draft a 409.
"""

from __future__ import annotations

import re
from typing import Annotated

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED
from sqlalchemy.ext.asyncio import AsyncSession

from facturation_service.invoice_documents import Seller, current_document
from shared import Identity, provide_identity

__all__ = ["ROUTE_HANDLERS", "matches_etag"]

PDF_MEDIA_TYPE = "application/pdf"
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def matches_etag(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed tag, ``*`` matching any."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


@get(
    "/billing/invoices/{invoice_id:str}/pdf",
    dependencies={"identity": Provide(provide_identity)},
    media_type=PDF_MEDIA_TYPE,
)
async def get_invoice_pdf(
    request: Request[object, object, State],
    invoice_id: Annotated[str, PathParameter(max_length=255)],
    identity: NamedDependency[Identity],
    seller: NamedDependency[Seller],
    db_session: NamedDependency[AsyncSession],
) -> Response[bytes]:
    document = await current_document(db_session, identity.user_id, invoice_id, seller)
    etag = f'"{document.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if matches_etag(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    filename = _UNSAFE_FILENAME.sub("_", document.number)
    headers["Content-Disposition"] = f'attachment; filename="{filename}.pdf"'
    return Response(
        document.content, status_code=HTTP_200_OK, media_type=PDF_MEDIA_TYPE, headers=headers
    )


ROUTE_HANDLERS = [get_invoice_pdf]
