"""Ports for servers that a supervisor restarts in place: never one the kernel may hand to
an outgoing connection meanwhile."""

from __future__ import annotations

import socket

from lapor.devtools import infra
from lapor.devtools.infra import ephemeral_ports, free_port


def test_a_free_port_is_outside_the_ephemeral_range_and_can_be_listened_on():
    ephemeral = ephemeral_ports()
    for _ in range(20):
        port = free_port()
        assert port not in ephemeral
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()


def test_a_block_of_free_ports_is_consecutive_and_wholly_outside_the_ephemeral_range():
    base = free_port(6)
    ephemeral = ephemeral_ports()
    held = []
    try:
        for port in range(base, base + 6):
            assert port not in ephemeral
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            held.append(s)
    finally:
        for s in held:
            s.close()


def test_a_port_in_use_is_passed_over(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken_port = taken.getsockname()[1]
        other = free_port()
        offered = iter([taken_port, other])
        monkeypatch.setattr(infra.random, "choice", lambda candidates: next(offered))
        assert free_port() == other
