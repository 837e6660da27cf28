"""The test harness's ports: every service of a stack gets a port of its own."""

from __future__ import annotations

import socket

from tests.support.processes import free_port


def test_free_port_never_hands_out_the_same_port_twice() -> None:
    # The kernel repeats itself about 140 times in 2,000 binds to port 0.
    ports = [free_port() for _ in range(2000)]

    assert len(set(ports)) == len(ports)


def test_a_port_handed_out_is_free_to_listen_on() -> None:
    port = free_port()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
