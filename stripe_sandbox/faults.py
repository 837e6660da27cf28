"""Scripted faults: the next ``count`` calls to an endpoint fail in a chosen way, then the
endpoint answers normally again. Set in-process (``state.faults.add(...)``) or with
``POST /sandbox/faults {method, path, count, kind}``.

Kinds, and what the client sees (always Stripe's wire format):

::

    api_error           500 {"error": {"type": "api_error"}}          the SDK retries
    rate_limit          429 invalid_request_error, code rate_limit    the SDK does not retry
    timeout             no answer before the client gives up (held ``seconds``, then a 500)
    disconnect          the connection closes before a complete answer: a network error
    card_declined       402 card_error, code card_declined
    invalid_request     400 invalid_request_error (``message``, ``param``)
    idempotency_error   400 idempotency_error
    invalid_api_key     401 invalid_request_error, as for a wrong secret key
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal, get_args

from stripe_sandbox.errors import (
    StripeApiError,
    api_error,
    card_error,
    idempotency_error,
    invalid_request,
)

__all__ = ["FAULT_KINDS", "Fault", "FaultKind", "Faults"]

FaultKind = Literal[
    "api_error",
    "rate_limit",
    "timeout",
    "disconnect",
    "card_declined",
    "invalid_request",
    "idempotency_error",
    "invalid_api_key",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
DEFAULT_HOLD_SECONDS = 60.0


@dataclass
class Fault:
    method: str
    """``POST``, ``GET``... or ``*`` for any."""
    path: str
    """An exact path or a glob (``/v1/customers/*``; ``*`` also crosses ``/``)."""
    kind: FaultKind
    count: int = 1
    """How many of the next matching calls fail; it counts down to zero, then the fault is gone."""
    message: str | None = None
    """Replaces the error's message, for the kinds that answer an error body."""
    param: str | None = None
    seconds: float = DEFAULT_HOLD_SECONDS
    """How long a ``timeout`` holds the request: longer than the client waits."""

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and fnmatchcase(path, self.path)

    def error(self) -> StripeApiError:
        """The error body the kinds that answer send (a held ``timeout`` ends in api_error)."""
        if self.kind == "rate_limit":
            return invalid_request(
                self.message
                or "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.",
                code="rate_limit",
                status=429,
            )
        if self.kind == "card_declined":
            return card_error(
                self.message or "Your card was declined.",
                code="card_declined",
                param=self.param,
                decline_code="generic_decline",
            )
        if self.kind == "invalid_request":
            return invalid_request(self.message or "Invalid request.", param=self.param)
        if self.kind == "idempotency_error":
            return idempotency_error(
                self.message
                or "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with."
            )
        if self.kind == "invalid_api_key":
            return invalid_request(
                self.message or "Invalid API Key provided: sk_test_****", status=401
            )
        return api_error(self.message or "An unknown error occurred (scripted sandbox fault).")

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "kind": self.kind,
            "count": self.count,
            "message": self.message,
            "param": self.param,
            "seconds": self.seconds,
        }


@dataclass
class Faults:
    """Pending faults, first added first used when several match one call."""

    pending: list[Fault] = field(default_factory=list)

    def add(
        self,
        method: str,
        path: str,
        kind: FaultKind,
        *,
        count: int = 1,
        message: str | None = None,
        param: str | None = None,
        seconds: float = DEFAULT_HOLD_SECONDS,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        fault = Fault(
            method=method.upper(),
            path=path,
            kind=kind,
            count=count,
            message=message,
            param=param,
            seconds=seconds,
        )
        self.pending.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault that answers this call, counted down; None if the call goes through."""
        for fault in self.pending:
            if fault.matches(method, path):
                fault.count -= 1
                if fault.count == 0:
                    self.pending.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.pending.clear()
