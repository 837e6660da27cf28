"""The facturation service: Stripe customers, catalog and basket, embedded Checkout Sessions,
the webhook journal and invoices. Run it with ``python -m facturation_service``."""

__all__: list[str] = []
