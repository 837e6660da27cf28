"""Everything the sandbox knows, in memory: one process, one event loop, no locks needed because
no handler awaits between reading and writing it."""

from __future__ import annotations

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
    events: dict[str, Obj] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    idempotency: dict[str, IdempotentResult] = field(default_factory=dict)
    requests: RequestLog = field(default_factory=RequestLog)
    faults: Faults = field(default_factory=Faults)

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
            ("evt_", self.events),
        ):
            if object_id.startswith(prefix):
                return table.get(object_id)
        return None
