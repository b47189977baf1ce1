"""A broker connection of an installed app keeps the guarded transport when kombu fails over to the next URL.

kombu's ``Connection.switch`` takes the transport from the next URL's scheme; without our connection class
the message guard and the receipt pipeline's held mark were gone after the first failover. No broker is
needed: a switch only changes parameters, it does not connect.
"""

from __future__ import annotations

import pytest
from celery import Celery

from celery_futures import install
from celery_futures.worker.message_guard import SENTINEL_TRANSPORT, TRANSPORT


@pytest.mark.parametrize(("urls", "options", "guarded"), [
    ("redis://127.0.0.1:7001/0;redis://127.0.0.1:7002/0", {}, TRANSPORT),
    ("sentinel://127.0.0.1:7001/0;sentinel://127.0.0.1:7002/0", {"master_name": "mymaster"}, SENTINEL_TRANSPORT),
])
def test_a_switch_to_the_next_broker_url_keeps_the_guarded_transport(urls: str, options: dict[str, str],
                                                                      guarded: str) -> None:
    app = install(Celery("failover", broker=urls, backend=urls.split(";", maxsplit=1)[0], set_as_current=False))
    app.conf.broker_transport_options = options
    connection = app.connection_for_read()
    assert connection.transport_cls == guarded
    connection.maybe_switch_next()
    assert connection.port == 7002
    assert connection.transport_cls == guarded, "the failover switch dropped the message guard"
    app.close()


def test_an_app_with_its_own_transport_switches_as_kombu_does() -> None:
    """Only a guarded transport is kept; an app's own choice follows kombu's rules, the URL's scheme."""
    app = install(Celery("own", broker="redis://127.0.0.1:7001/0;redis://127.0.0.1:7002/0", set_as_current=False))
    app.conf.broker_transport = "memory"
    connection = app.connection_for_read()
    connection.maybe_switch_next()
    assert connection.transport_cls == "redis"
    app.close()
