"""Redis refuses every client that does not give the password (here the tests' own redis-server, started
with ``--requirepass`` like the stack's and ``scripts/local-cluster.sh``'s; the stack's is checked in
tests/stack/test_security.py)."""

from __future__ import annotations

import socket

import pytest
import redis

from producer.processes import RedisServer


def unauthenticated_reply(port: int, *command: str) -> bytes:
    """Redis's raw reply to ``command`` on a fresh connection that never authenticated (RESP, no client
    library in between to negotiate or retry)."""
    request = f"*{len(command)}\r\n".encode() + b"".join(
        f"${len(part)}\r\n{part}\r\n".encode() for part in command)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(4096)


@pytest.mark.parametrize("command", [("PING",), ("GET", "celery"), ("LPUSH", "celery", "x"), ("KEYS", "*")])
def test_a_client_without_the_password_gets_noauth(redis_server: RedisServer, command: tuple[str, ...]) -> None:
    assert unauthenticated_reply(redis_server.port, *command).startswith(b"-NOAUTH Authentication required")


def test_a_client_with_a_wrong_password_is_refused(redis_server: RedisServer) -> None:
    with redis.Redis(host="127.0.0.1", port=redis_server.port, password="wrong") as guessing, \
            pytest.raises(redis.AuthenticationError, match="invalid username-password pair"):
        guessing.ping()
