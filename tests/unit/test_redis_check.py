"""The start check's answers without a server: a client whose PING says what a real Redis would say."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import AuthenticationError, BusyLoadingError

from celery_futures.protocol.redis_check import LOADING, problem_once_loaded


class Answers:
    """Stands in for ``redis.Redis`` at its one call here: each ``ping()`` gives the next of ``replies``."""

    def __init__(self, *replies: Exception | bool) -> None:
        self.replies = list(replies)
        self.pings = 0

    def ping(self) -> bool:
        self.pings += 1
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def check(client: Answers, timeout: float) -> str | None:
    return problem_once_loaded(client, timeout)  # type: ignore[arg-type]  # duck-typed stand-in


def test_a_redis_that_ends_its_load_is_ready() -> None:
    client = Answers(BusyLoadingError("LOADING"), BusyLoadingError("LOADING"), True)
    assert check(client, timeout=5) is None
    assert client.pings == 3


def test_a_redis_that_loads_past_the_timeout_says_so() -> None:
    assert check(Answers(BusyLoadingError("LOADING")), timeout=0.2) == f"{LOADING}, still after 0.2s"


@pytest.mark.parametrize(("reply", "said"), [
    (AuthenticationError("invalid password"), "it refused the password (AUTH failed)"),
    (redis.ConnectionError("Error 111 connecting"), "Error 111 connecting"),
])
def test_any_other_problem_is_said_at_once(reply: Exception, said: str) -> None:
    client = Answers(reply, True)
    assert check(client, timeout=5) == said
    assert client.pings == 1
