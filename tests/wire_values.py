"""Values for the wire's property tests: what must arrive unchanged, what must be refused, and a comparison
strict enough to tell them apart (types all the way down)."""

from __future__ import annotations

import collections
import enum
import math
from decimal import Decimal
from typing import Any, NamedTuple

from hypothesis import strategies as st


class Color(enum.IntEnum):
    RED = 1


class Name(str):
    pass


class Point(NamedTuple):
    x: int
    y: int


def identical(sent: Any, got: Any) -> bool:
    """Equal, with the same type at every level, the same key order, and the same sign of zero."""
    if type(sent) is not type(got):
        return False
    if isinstance(sent, list | tuple):
        return len(sent) == len(got) and all(identical(a, b) for a, b in zip(sent, got, strict=True))
    if isinstance(sent, dict):
        return list(sent) == list(got) and all(identical(sent[key], got[key]) for key in sent)
    if isinstance(sent, float):
        return repr(sent) == repr(got)
    return bool(sent == got)


# -- hypothesis strategies -----------------------------------------------------------------------------
admitted_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                   | st.text())
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
strange_leaves = (st.sets(st.integers(), max_size=2) | st.binary(max_size=4) | st.builds(object) | surrogates
                  | st.sampled_from([math.nan, math.inf, -math.inf, Color.RED, Name("n"), Point(1, 2),
                                     Decimal("1.5"), collections.OrderedDict(a=1)])
                  | st.builds(pow, st.just(10), st.just(5000)))  # an int too long for str(); repr() fails too
strange_keys = (st.integers() | st.none() | st.booleans() | st.just("__type__") | st.builds(Name, st.text())
                | surrogates)


def nested(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=20)


plain_keys = st.text().filter(lambda key: key != "__type__")
admitted = nested(admitted_leaves, plain_keys)
"""Only what must arrive unchanged."""
anything = nested(admitted_leaves | strange_leaves, st.text() | strange_keys)
"""A mix in which most values hide something the wire must refuse."""


def arguments(values: st.SearchStrategy[Any], names: st.SearchStrategy[str] | None = None
              ) -> st.SearchStrategy[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``(args, kwargs)`` for a call; keyword names are any text unless ``names`` says otherwise."""
    return st.tuples(st.lists(values, max_size=3).map(tuple),
                     st.dictionaries(st.text() if names is None else names, values, max_size=3))
