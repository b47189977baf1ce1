"""The profile's summary of py-spy's raw output (the profile itself needs a running cluster and ptrace)."""

from __future__ import annotations

from producer.bench.profile import frame_name, summarize

RAW = """\
loop (celery/worker/loops.py:80);on_task (celery/worker/strategy.py:12);publish (kombu/messaging.py:170) 6
loop (celery/worker/loops.py:80);on_task (celery/worker/strategy.py:12) 2
loop (celery/worker/loops.py:80);poll (kombu/utils/eventio.py:40) 2
not a sample line
"""


def test_shares_are_of_all_samples_inclusive_and_self() -> None:
    total, inclusive, own = summarize(RAW, top=10)
    assert total == 10
    assert dict(inclusive) == {"loop (celery/worker/loops.py)": 1.0, "on_task (celery/worker/strategy.py)": 0.8,
                               "publish (kombu/messaging.py)": 0.6, "poll (kombu/utils/eventio.py)": 0.2}
    assert own[0] == ("publish (kombu/messaging.py)", 0.6)
    assert dict(own)["on_task (celery/worker/strategy.py)"] == 0.2


def test_frames_lose_their_line_and_the_site_packages_prefix() -> None:
    frame = "publish (/opt/venv/lib/python3.11/site-packages/kombu/messaging.py:170)"
    assert frame_name(frame) == "publish (kombu/messaging.py)"
    assert summarize("", top=5) == (0, [], [])
