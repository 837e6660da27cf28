"""The Stripe SDK's request logs, formatted only when something will write them.

For every request, stripe-python formats two log lines and, for every answer, two more, one of
them the whole answer body (``logfmt``: a regular expression over it, then its ``repr``), before
its logger or ``STRIPE_LOG`` decides whether to write them. With its logger at the default
``WARNING``, that formatting was 6 % of facturation's CPU per Checkout Session (py-spy,
docs/benchmarks.md), for lines nobody reads.

:func:`log_stripe_requests_only_when_enabled` makes the SDK's requestor call its two log
functions only when they would write something: the ``stripe`` logger is enabled for their
level, or ``STRIPE_LOG`` / ``stripe.log`` asks for console logs. Then the SDK's own functions
run unchanged, so a developer who turns the ``stripe`` logger to ``DEBUG`` sees the same lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stripe import _api_requestor, _util

__all__ = ["log_stripe_requests_only_when_enabled", "sdk_log"]

_LOG_FUNCTIONS = {"log_debug": logging.DEBUG, "log_info": logging.INFO}
_GATED = "_written_only_when_enabled"


def log_stripe_requests_only_when_enabled() -> None:
    """Gate the requestor's ``log_debug`` and ``log_info`` (once per process; calling it again
    changes nothing).

    Raises:
        RuntimeError: this version of the SDK no longer has them where they were: the gate
            must be looked at again, not silently skipped.
    """
    for name, level in _LOG_FUNCTIONS.items():
        log = getattr(_api_requestor, name, None)
        if log is None or not callable(log):
            raise RuntimeError(f"stripe._api_requestor.{name} is gone: revisit stripe_logs.py")
        if not getattr(log, _GATED, False):
            setattr(_api_requestor, name, _written_only_when_enabled(log, level))


def sdk_log(function: str, message: str, **params: Any) -> None:
    """The requestor's ``log_info`` or ``log_debug`` (gated), for a request sent without the
    requestor (``stripe_api.StripeApi``'s Checkout Session): its lines are the SDK's own."""
    if function not in _LOG_FUNCTIONS:
        raise ValueError(f"not one of the SDK's log functions: {function}")
    getattr(_api_requestor, function)(message, **params)


def _written_only_when_enabled(log: Callable[..., None], level: int) -> Callable[..., None]:
    def gated(message: str, **params: Any) -> None:
        if _util.logger.isEnabledFor(level) or _util._console_log_level() is not None:  # type: ignore[no-untyped-call]
            log(message, **params)

    setattr(gated, _GATED, True)
    return gated
