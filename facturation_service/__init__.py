"""The facturation service: Stripe customers, the catalog, embedded Checkout Sessions, the webhook
journal and invoices. Run it with ``python -m facturation_service``.

Modules, top to bottom (route → domain → storage or Stripe):

- ``app.py``: the composition root; ``create_app(settings, *, stripe, auth)`` builds every
  collaborator once and injects each with ``Provide``.
- ``settings.py``, ``models.py`` (tables), ``schemas.py`` (every request and response body).
- Routes, thin: ``routes.py`` (catalog, basket, customer, checkout_session),
  ``invoice_routes.py``, ``webhooks.py`` (the webhook intake and the journal's operator routes).
- Domain: ``checkout.py`` (pricing, the customer step, the session, the order),
  ``customers.py``, ``invoices.py``, ``order_events.py``.
- Background: ``worker.py``, the loop that applies journaled events.
- Storage and clients: ``journal.py`` (``webhook_events``), ``snapshots.py`` (the
  newest-snapshot-wins upsert), ``catalog.py``, ``stripe_api.py``
  (every Stripe request), ``auth_client.py``; ``migrations/``.
"""

__all__: list[str] = []
