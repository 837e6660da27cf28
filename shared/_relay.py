"""The webhook relay's wire format: the gateway carries Stripe deliveries that arrive together to
facturation in one private request, and gets each one's answer back in one.

A relayed delivery is the request the gateway would have forwarded on its own (its headers, the
internal credential among them, and its body byte for byte); a relayed answer is what facturation
would have answered it (status, headers, body). Facturation handles each delivery exactly as if
it had arrived alone, so one delivery's failure never touches the others'.

Both directions are MessagePack arrays: bodies travel as binary, untouched (Stripe signed their
exact bytes), and neither side parses JSON to frame them.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "MAX_RELAYED_BYTES",
    "MAX_RELAYED_DELIVERIES",
    "RELAY_MEDIA_TYPE",
    "RELAY_PATH",
    "RelayedAnswer",
    "RelayedDelivery",
    "decode_answers",
    "decode_deliveries",
    "encode_relay",
    "relay_body_limit",
]

RELAY_PATH = "/internal/v1/webhook-deliveries"
RELAY_MEDIA_TYPE = "application/msgpack"
MAX_RELAYED_DELIVERIES = 64
"""Deliveries in one relay request at most: what the gateway sends and facturation accepts."""
MAX_RELAYED_BYTES = 4 * 1024 * 1024
"""Bodies in one relay request at most, beyond its first delivery's (which always goes, whatever
its size): what the gateway sends and facturation accepts."""

Header = tuple[bytes, bytes]


def relay_body_limit(max_body_bytes: int) -> int:
    """The largest relay request where a delivery may be ``max_body_bytes``: its first
    delivery, whatever its size, and the others' bodies (``MAX_RELAYED_BYTES``)."""
    return max_body_bytes + MAX_RELAYED_BYTES


class RelayedDelivery(msgspec.Struct, array_like=True, frozen=True):
    """One delivery as the gateway would have forwarded it alone."""

    headers: list[Header]
    body: bytes


class RelayedAnswer(msgspec.Struct, array_like=True, frozen=True):
    """What facturation answered one relayed delivery."""

    status: int
    headers: list[Header]
    body: bytes


_ENCODER = msgspec.msgpack.Encoder()
_DELIVERIES = msgspec.msgpack.Decoder(list[RelayedDelivery])
_ANSWERS = msgspec.msgpack.Decoder(list[RelayedAnswer])


def encode_relay(items: list[RelayedDelivery] | list[RelayedAnswer]) -> bytes:
    return _ENCODER.encode(items)


def decode_deliveries(data: bytes) -> list[RelayedDelivery]:
    """Raises ``msgspec.DecodeError`` | ``msgspec.ValidationError`` on anything else."""
    return _DELIVERIES.decode(data)


def decode_answers(data: bytes) -> list[RelayedAnswer]:
    """Raises ``msgspec.DecodeError`` | ``msgspec.ValidationError`` on anything else."""
    return _ANSWERS.decode(data)
