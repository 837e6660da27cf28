"""A small evaluator of Kubernetes NetworkPolicy semantics, for the features our manifests use:
pod and namespace selectors (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist), ipBlock
with except, numbered ports with protocols, and policyTypes isolation.

A connection is allowed when the source's egress allows it (or no policy isolates the source's
egress) and the destination's ingress allows it (or the destination is not a pod of the policies'
namespace, or no policy isolates its ingress) — as the API documents it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


# eq=False: endpoints are compared by identity, which also makes them hashable.
@dataclass(frozen=True, eq=False)
class Endpoint:
    """A pod (with a namespace) or an address outside the cluster (namespace ``None``)."""

    name: str
    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(c) for c in block.get("except", []))
    if other.namespace is None:
        return False  # selectors only ever match pods
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def _port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    ports = list(ports or [])
    if not ports:
        return True
    for entry in ports:
        assert isinstance(entry.get("port"), int), "named ports are not modelled"
        if entry.get("protocol", "TCP") == protocol and entry["port"] == port:
            return True
    return False


def _rule_allows(
    rule: Mapping[str, Any], peers_key: str, namespace: str, other: Endpoint, port: int, proto: str
) -> bool:
    peers = rule.get(peers_key)
    peer_ok = not peers or any(_peer_matches(peer, namespace, other) for peer in peers)
    return peer_ok and _port_matches(rule.get("ports"), port, proto)


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


class NetworkPolicies:
    def __init__(self, policies: Iterable[Mapping[str, Any]]) -> None:
        self.policies = list(policies)

    def _selecting(self, pod: Endpoint, direction: str) -> list[Mapping[str, Any]]:
        return [
            policy
            for policy in self.policies
            if policy["metadata"]["namespace"] == pod.namespace
            and direction in _policy_types(policy)
            and selects(policy["spec"]["podSelector"], pod.labels)
        ]

    def _side_allows(
        self, pod: Endpoint, other: Endpoint, direction: str, port: int, proto: str
    ) -> bool:
        if pod.namespace is None:
            return True  # outside the cluster: no policy applies
        selecting = self._selecting(pod, direction)
        if not selecting:
            return True  # not isolated in this direction
        rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        return any(
            _rule_allows(rule, peers_key, policy["metadata"]["namespace"], other, port, proto)
            for policy in selecting
            for rule in policy["spec"].get(rules_key, [])
        )

    def allows(
        self, source: Endpoint, destination: Endpoint, port: int, proto: str = "TCP"
    ) -> bool:
        egress = self._side_allows(source, destination, "Egress", port, proto)
        return egress and self._side_allows(destination, source, "Ingress", port, proto)
