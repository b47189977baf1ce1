"""How a chunk's answer turns back into item results (the integration tests run chunks on real workers)."""

from __future__ import annotations

import pytest

from celery_futures.client.chunking import argument_chunks, outcomes
from celery_futures.client.errors import RemoteError, RemoteTraceback
from celery_futures.protocol.chunks import failure, success


def test_arguments_are_cut_like_the_stdlibs_chunks() -> None:
    assert list(argument_chunks(([1, 2, 3, 4, 5], "abcdef"), 2)) == [[(1, "a"), (2, "b")], [(3, "c"), (4, "d")],
                                                                     [(5, "e")]]
    assert list(argument_chunks(([],), 3)) == []


def test_an_items_error_is_raised_after_the_items_before_it() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        answer = [success(1), failure(exc, "Traceback: here\n")]
    values = outcomes(answer, 3)
    assert next(values) == 1
    with pytest.raises(KeyError) as raised:
        next(values)
    assert isinstance(raised.value.__cause__, RemoteTraceback) and "here" in str(raised.value.__cause__)


@pytest.mark.parametrize("answer", [None, {"result": 1}, [success(1), 5], [success(1)] * 3, [success(1)]])
def test_an_answer_that_does_not_fit_the_chunk_is_a_remote_error(answer: object) -> None:
    with pytest.raises(RemoteError, match="a chunk of 2 calls"):
        list(outcomes(answer, 2))
