"""The NetworkPolicies encode exactly the intended graph: every (source, destination, port) the
design needs is allowed and every other one is denied, including pods nobody planned for."""

from __future__ import annotations

import itertools

import pytest

from tests.deploy.manifests import k8s_objects
from tests.deploy.network_policies import Endpoint, NetworkPolicies, selects

NAMESPACE = "facturation"
NS_LABELS = {"kubernetes.io/metadata.name": NAMESPACE}


def _pod(name: str, ip: str, **labels: str) -> Endpoint:
    return Endpoint(name, ip, NAMESPACE, labels, NS_LABELS)


def _labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "facturation",
    }


GATEWAY = _pod("gateway", "10.244.1.10", **_labels("gateway", "api"))
AUTH = _pod("auth", "10.244.1.11", **_labels("auth", "api"))
FACTURATION = _pod("facturation", "10.244.1.12", **_labels("facturation", "api"))
AUTH_MIGRATE = _pod("auth-migrate", "10.244.1.13", **_labels("auth", "migrations"))
FACTURATION_MIGRATE = _pod(
    "facturation-migrate", "10.244.1.14", **_labels("facturation", "migrations")
)
# A pod someone starts in the namespace (a debug shell, a compromised sidecar): it gets nothing.
STRANGER = _pod("stranger", "10.244.1.99", run="debug")
INGRESS_CONTROLLER = Endpoint(
    "ingress-controller",
    "10.244.2.5",
    "ingress-nginx",
    {"app.kubernetes.io/name": "ingress-nginx"},
    {"kubernetes.io/metadata.name": "ingress-nginx"},
)
OTHER_NAMESPACE = Endpoint(
    "other-app", "10.244.3.7", "default", {"app": "other"}, {"kubernetes.io/metadata.name": "x"}
)
DNS = Endpoint(
    "kube-dns",
    "10.244.0.2",
    "kube-system",
    {"k8s-app": "kube-dns"},
    {"kubernetes.io/metadata.name": "kube-system"},
)
AUTH_DB = Endpoint("auth-db", "10.255.0.10")  # the placeholders in networkpolicies.yaml
FACTURATION_DB = Endpoint("facturation-db", "10.255.0.20")
STRIPE = Endpoint("stripe-api", "54.187.216.72")  # an address api.stripe.com has answered with
CLOUD_METADATA = Endpoint("cloud-metadata", "169.254.169.254")
PRIVATE_HOST = Endpoint("private-host", "10.20.30.40")  # e.g. another VPC machine
INTERNET_CLIENT = Endpoint("internet-client", "203.0.113.50")

OUR_PODS = [GATEWAY, AUTH, FACTURATION, AUTH_MIGRATE, FACTURATION_MIGRATE, STRANGER]
SOURCES = [*OUR_PODS, INGRESS_CONTROLLER, OTHER_NAMESPACE, INTERNET_CLIENT]
DESTINATIONS = [
    *OUR_PODS,
    DNS,
    AUTH_DB,
    FACTURATION_DB,
    STRIPE,
    CLOUD_METADATA,
    PRIVATE_HOST,
    OTHER_NAMESPACE,
]
PORTS = [("TCP", 8000), ("TCP", 8001), ("TCP", 8002), ("TCP", 5432), ("TCP", 443), ("TCP", 80)]
PORTS += [("UDP", 53), ("TCP", 53)]

# The design, edge by edge (docs/deploy.md; DESIGN.md's diagram).
INTENDED = {
    (INGRESS_CONTROLLER, GATEWAY, "TCP", 8000),
    (GATEWAY, AUTH, "TCP", 8001),
    (GATEWAY, FACTURATION, "TCP", 8002),
    # facturation stores user_stripe_id in auth (PUT /internal/v1/users/{id}/stripe-customer).
    (FACTURATION, AUTH, "TCP", 8001),
    (AUTH, AUTH_DB, "TCP", 5432),
    (AUTH_MIGRATE, AUTH_DB, "TCP", 5432),
    (FACTURATION, FACTURATION_DB, "TCP", 5432),
    (FACTURATION_MIGRATE, FACTURATION_DB, "TCP", 5432),
    (FACTURATION, STRIPE, "TCP", 443),
    *((pod, DNS, proto, 53) for pod in OUR_PODS for proto in ("UDP", "TCP")),
}


def _outside_our_control(source: Endpoint, destination: Endpoint) -> bool:
    """Traffic that neither starts nor ends in our namespace is not ours to police."""
    return source.namespace != NAMESPACE and destination.namespace != NAMESPACE


CASES = [
    (source, destination, proto, port)
    for source, destination, (proto, port) in itertools.product(SOURCES, DESTINATIONS, PORTS)
    if source is not destination and not _outside_our_control(source, destination)
]


@pytest.fixture(scope="module")
def policies() -> NetworkPolicies:
    return NetworkPolicies(k8s_objects("NetworkPolicy").values())


def test_the_namespace_denies_everything_by_default() -> None:
    deny = k8s_objects("NetworkPolicy")["default-deny-all"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize(
    ("source", "destination", "proto", "port"),
    CASES,
    ids=[f"{s.name}->{d.name}:{p}/{proto}" for s, d, proto, p in CASES],
)
def test_connection_is_allowed_exactly_when_the_design_needs_it(
    policies: NetworkPolicies, source: Endpoint, destination: Endpoint, proto: str, port: int
) -> None:
    expected = (source, destination, proto, port) in INTENDED
    assert policies.allows(source, destination, port, proto) is expected


def test_every_intended_edge_is_among_the_checked_cases() -> None:
    assert set(CASES) >= INTENDED


def test_only_facturation_reaches_a_public_address_and_only_on_443(
    policies: NetworkPolicies,
) -> None:
    reach = {
        (pod.name, port)
        for pod in OUR_PODS
        for port in range(1, 1025)
        if policies.allows(pod, STRIPE, port)
    }
    assert reach == {("facturation", 443)}


def test_the_evaluator_matches_selectors_as_kubernetes_does() -> None:
    labels = {"app.kubernetes.io/name": "auth", "app.kubernetes.io/component": "api"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"app.kubernetes.io/name": "auth"}}, labels)
    assert not selects({"matchLabels": {"app.kubernetes.io/name": "gateway"}}, labels)
    expression = {"key": "app.kubernetes.io/name", "operator": "In", "values": ["auth", "x"]}
    assert selects({"matchExpressions": [expression]}, labels)
    assert not selects({"matchExpressions": [{**expression, "operator": "NotIn"}]}, labels)


def test_without_policies_everything_is_allowed() -> None:
    # The evaluator's baseline: so the denials above come from the manifests, not from it.
    open_cluster = NetworkPolicies([])
    assert all(open_cluster.allows(s, d, port, proto) for s, d, proto, port in CASES)
