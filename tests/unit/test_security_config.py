"""The Celery configuration every process shares is JSON only and reads the broker through the message
guard, whoever builds the app (a worker from its environment, a producer or a test from a URL)."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from worker import constants as c
from worker.app import EnvConfig, create_app
from worker.message_guard import MAX_BYTES_OPTION, TRANSPORT

URL = "redis://:pw@127.0.0.1:6379/0"


def env_app(env: dict[str, str]) -> Celery:
    app = Celery("t", set_as_current=False)
    app.config_from_object(EnvConfig({"REDIS_URL": URL, **env}))
    return app


@pytest.mark.parametrize("app", [create_app(URL), create_app(URL, socket_timeout=5.0), env_app({})],
                         ids=["producer", "producer-with-timeouts", "worker"])
def test_json_only_and_guarded(app: Celery) -> None:
    conf: Any = app.conf
    assert (conf.task_serializer, conf.result_serializer, conf.event_serializer) == ("json", "json", "json")
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]
    assert conf.broker_transport == TRANSPORT
    assert conf.broker_transport_options[MAX_BYTES_OPTION] == c.DEFAULT_MAX_MESSAGE_BYTES


def test_the_worker_limit_comes_from_its_environment() -> None:
    conf: Any = env_app({c.ENV_MAX_MESSAGE_BYTES: "1048576"}).conf
    assert conf.broker_transport_options[MAX_BYTES_OPTION] == 1048576


def test_producer_timeouts_still_reach_the_broker() -> None:
    options = create_app(URL, socket_timeout=5.0).conf.broker_transport_options
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (5.0, 5.0)
