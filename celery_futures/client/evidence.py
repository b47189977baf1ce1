"""What Redis says about a client's futures, read so that a judgment rests on one consistent state.

The watchdog decides that a worker is gone, or that a message is gone, from what it reads here. Redis can
lose its data between two reads (a restart without persistence, a flush), and then a missing heartbeat key
says nothing about the worker. So every read a judgment rests on is taken in one ``MULTI`` together with the
client's own marker (``cfx:client:<executor>``, refreshed by that same ``EXPIRE``): if the marker is gone,
so may be everything else, and nothing is judged from that read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from kombu.transport.redis import Channel

from celery_futures.client.future import CeleryFuture
from celery_futures.protocol import keys as k
from celery_futures.protocol.claims import CancelClaim, claim_for_cancel
from celery_futures.protocol.keys import TASK_ID, alive_key, claim_key
from celery_futures.protocol.replication import Fence

logger = logging.getLogger(__name__)

MGET_CHUNK = 1000
SCAN_PAGE = 1000

Meta = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """Heartbeats and stored states read in one transaction with the client's marker."""

    marker_kept: bool
    beats: list[bytes | None]
    metas: list[Meta | None]


class Evidence:
    def __init__(self, redis_client: Any, broker_client: Callable[[], Any], *, marker: str, ttl: int,
                 meta_key: Callable[[str], str], decode: Callable[[bytes], Any], fence: Fence) -> None:
        """``redis_client`` reaches the result backend's Redis (claims, heartbeats, results), ``broker_client()``
        the broker's (queues and kombu's ``unacked`` hash); usually they are one server. ``meta_key`` and
        ``decode`` are the result backend's own key naming and decoding; ``fence`` confirms a cancel with a
        replica before it counts (``celery_futures/protocol/replication.py``)."""
        self._redis = redis_client
        self._broker = broker_client
        self._fence = fence
        self.marker = marker
        self._ttl = ttl
        self._meta_key = meta_key
        self._decode = decode

    # -- the client's marker ---------------------------------------------------------------------------
    def restore_marker(self) -> None:
        """Write the marker (at start, and once the evidence after a data loss is complete)."""
        self._redis.set(self.marker, "1", ex=self._ttl)

    def drop_marker(self) -> None:
        """At a clean shutdown: nothing of this client is judged any more (it expires anyway)."""
        try:
            self._redis.delete(self.marker)
        except redis.RedisError as exc:
            logger.warning("could not delete the client's marker %s: %s", self.marker, exc)

    def marker_kept(self) -> bool:
        """Whether the marker is still there (refreshing its lifetime): False means Redis lost its data."""
        return bool(self._redis.expire(self.marker, self._ttl))

    # -- reads ------------------------------------------------------------------------------------------
    def live_boots(self) -> dict[bytes, bytes]:
        """Every heartbeat key now, and the boot id it holds: the registered nodes (``cfx:alive-nodes``), read
        in two commands however many keys Redis holds; nodes whose key has expired are dropped from it."""
        nodes = sorted(self._redis.smembers(k.ALIVE_NODES))
        keys = [k.alive_key(node.decode()).encode() for node in nodes]
        values = self._redis.mget(keys) if keys else []
        if gone := [node for node, value in zip(nodes, values, strict=True) if value is None]:
            self._redis.srem(k.ALIVE_NODES, *gone)  # a live one among them adds itself back at its next beat
        return {key: value for key, value in zip(keys, values, strict=True) if value is not None}

    def claims(self, futures: list[CeleryFuture]) -> list[Any]:
        return mget_in_chunks(self._redis, [claim_key(f.task_id) for f in futures])

    def beats(self, nodes: set[str]) -> dict[str, bytes | None]:
        ordered = sorted(nodes)
        return dict(zip(ordered, self._redis.mget([alive_key(n) for n in ordered]), strict=True)) if ordered else {}

    def stored(self, futures: list[CeleryFuture]) -> list[Meta | None]:
        """The stored state of each future's task (None where there is none, or it is unreadable)."""
        raw = mget_in_chunks(self._redis, [self._meta_key(f.task_id) for f in futures])
        return [self.decoded(value) for value in raw]

    def snapshot(self, nodes: list[str], futures: list[CeleryFuture]) -> Snapshot:
        """``nodes``' heartbeats and ``futures``' stored states, with the marker, in one transaction."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.expire(self.marker, self._ttl)
            pipe.mget([alive_key(node) for node in nodes])
            pipe.mget([self._meta_key(f.task_id) for f in futures])
            kept, beats, raw = pipe.execute()
        return Snapshot(bool(kept), list(beats), [self.decoded(value) for value in raw])

    def transport_ids(self, queues: list[str]) -> Iterator[bytes]:
        """Client task ids in ``queues`` and in kombu's ``unacked`` hash (messages fetched, not acknowledged)."""
        broker = self._broker()
        for queue in queues:
            for start in range(0, broker.llen(queue), SCAN_PAGE):
                for message in broker.lrange(queue, start, start + SCAN_PAGE - 1):
                    yield from TASK_ID.findall(message)
        for _, message in broker.hscan_iter(Channel.unacked_key, count=SCAN_PAGE):
            yield from TASK_ID.findall(message)

    def cancel(self, task_ids: list[str]) -> list[CancelClaim]:
        """Cancel claims for ``task_ids`` (each ``reset`` if the marker is gone). Behind Sentinel the ones won
        count only once a replica has them; otherwise they come back ``unconfirmed``, not won."""
        outcomes = claim_for_cancel(self._redis, task_ids, self._ttl, self.marker)
        if not any(o.won for o in outcomes) or self._fence.confirm(self._redis):
            return outcomes
        logger.warning("no replica confirmed %d cancel(s) in time; not deciding them yet", len(task_ids))
        return [CancelClaim(won=False, unconfirmed=True) if o.won else o for o in outcomes]

    def decoded(self, value: bytes | None) -> Meta | None:
        if not value:
            return None
        try:
            meta = self._decode(value)
        except Exception:
            logger.exception("unreadable stored state: %r", value[:200])
            return None
        return meta if isinstance(meta, dict) else None


def mget_in_chunks(client: Any, keys: list[str]) -> list[Any]:
    """MGET of any number of keys, a thousand per command, so no single command holds Redis for long."""
    values: list[Any] = []
    for start in range(0, len(keys), MGET_CHUNK):
        values += client.mget(keys[start:start + MGET_CHUNK])
    return values
