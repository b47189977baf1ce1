"""The profile's summary of py-spy's raw output (the profile itself needs a running cluster and ptrace)."""

from __future__ import annotations

from producer.bench.profile import frame_name, summarize

PUT = "loop (celery/worker/loops.py:80);on_task (celery/worker/strategy.py:12);_put_fanout (kombu/redis.py:9)"
READ = "execute_command (redis/client.py:5);SocketBuffer._read_from_socket (redis/_parsers/socket.py:64)"
RAW = f"""\
{PUT};{READ} 5
{PUT} 1
loop (celery/worker/loops.py:80);on_task (celery/worker/strategy.py:12) 2
loop (celery/worker/loops.py:80);poll (kombu/utils/eventio.py:40) 2
not a sample line
"""


def test_shares_are_of_all_samples_the_trunk_left_out() -> None:
    summary = summarize(RAW, top=10)
    assert summary.samples == 10
    inclusive = dict(summary.inclusive)
    assert "loop (celery/worker/loops.py)" not in inclusive  # in every sample: the trunk
    assert inclusive["on_task (celery/worker/strategy.py)"] == 0.8
    assert inclusive["_put_fanout (kombu/redis.py)"] == 0.6
    assert summary.own[0] == ("SocketBuffer._read_from_socket (redis/_parsers/socket.py)", 0.5)


def test_socket_reads_are_charged_to_the_caller_outside_redis() -> None:
    assert summarize(RAW, top=10).waits == [("_put_fanout (kombu/redis.py)", 0.5)]


def test_frames_lose_their_line_and_the_site_packages_prefix() -> None:
    frame = "publish (/opt/venv/lib/python3.11/site-packages/kombu/messaging.py:170)"
    assert frame_name(frame) == "publish (kombu/messaging.py)"
    assert summarize("", top=5).samples == 0

