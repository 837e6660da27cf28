"""Everything the sandbox knows, in memory: one process, one event loop, no locks needed because
no handler awaits between reading and writing it. Its clock (:meth:`SandboxState.now`) is real
time plus what ``POST /sandbox/clock/advance`` added: every timestamp the sandbox makes uses it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from stripe_sandbox.faults import Faults
from stripe_sandbox.request_log import RequestLog

__all__ = ["Delivery", "IdempotentResult", "SandboxState"]

Obj = dict[str, Any]


@dataclass
class Delivery:
    """Where one event's webhook delivery stands."""

    status: str = "pending"  # pending | delivered | failed | disabled
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None

    def as_dict(self) -> Obj:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class IdempotentResult:
    endpoint: str
    fingerprint: str
    status: int
    body: bytes
    request_id: str


@dataclass
class SandboxState:
    latency_ms: int = 0
    failure_rate: float = 0.0
    webhook_url: str = ""
    customers: dict[str, Obj] = field(default_factory=dict)
    checkout_sessions: dict[str, Obj] = field(default_factory=dict)
    checkout_line_items: dict[str, list[Obj]] = field(default_factory=dict)
    invoices: dict[str, Obj] = field(default_factory=dict)
    payment_intents: dict[str, Obj] = field(default_factory=dict)
    charges: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    disputes: dict[str, Obj] = field(default_factory=dict)
    subscriptions: dict[str, Obj] = field(default_factory=dict)
    checkout_subscription_data: dict[str, Obj] = field(default_factory=dict)
    """Per subscription-mode session: what its subscription is made with (``metadata``)."""
    portal_sessions: dict[str, Obj] = field(default_factory=dict)
    product_names: dict[str, str] = field(default_factory=dict)
    customer_cards: dict[str, str] = field(default_factory=dict)
    """The card number later renewals charge, per customer."""
    clock_offset: int = 0
    events: dict[str, Obj] = field(default_factory=dict)
    last_snapshots: dict[str, Obj] = field(default_factory=dict)
    """Per object id, the object as its latest event carried it."""
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    idempotency: dict[str, IdempotentResult] = field(default_factory=dict)
    requests: RequestLog = field(default_factory=RequestLog)
    faults: Faults = field(default_factory=Faults)

    def now(self) -> int:
        """The sandbox's time (unix seconds)."""
        return int(time.time()) + self.clock_offset

    def lookup(self, object_id: str) -> Obj | None:
        """Any object by its id, as ``expand`` needs."""
        for prefix, table in (
            ("cus_", self.customers),
            ("cs_", self.checkout_sessions),
            ("in_", self.invoices),
            ("pi_", self.payment_intents),
            ("ch_", self.charges),
            ("re_", self.refunds),
            ("du_", self.disputes),
            ("sub_", self.subscriptions),
            ("bps_", self.portal_sessions),
            ("evt_", self.events),
        ):
            if object_id.startswith(prefix):
                return table.get(object_id)
        return None
