"""Tests cannot reach the network: pytest.ini turns pytest-socket on for every test run (repository and packages)."""

from __future__ import annotations

import socket
import threading

import pytest
from pytest_socket import SocketBlockedError, SocketConnectBlockedError

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket")


def test_internet_socket_and_name_lookup_are_refused() -> None:
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1: never routed
    with pytest.raises(SocketBlockedError):
        socket.getaddrinfo("pypi.org", 443)
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_unix_sockets_stay_allowed() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"


@pytest.mark.allow_hosts(["127.0.0.1"])
def test_loopback_only_when_marked() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"pong")

    thread = threading.Thread(target=answer)
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        assert client.recv(4) == b"pong"
    thread.join()
    server.close()
    with pytest.raises(SocketConnectBlockedError, match="192.0.2.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
