"""``install(app)`` makes any app JSON only and reading its broker through the message guard, without
overriding what the app chose where the protocol allows a choice, and refusing what it cannot work with."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

import celery_futures
from celery_futures.protocol.backend import redis_backend
from celery_futures.protocol.requirements import check_protocol_settings
from celery_futures.protocol.settings import DEFAULT_MAX_MESSAGE_BYTES, MAX_BYTES_OPTION, SettingsError
from celery_futures.worker.message_guard import TRANSPORT
from worker import constants as c
from worker.app import EnvConfig, create_app

URL = "redis://:pw@127.0.0.1:6379/0"


def installed(config: dict[str, Any] | EnvConfig) -> Celery:
    app = Celery("t", set_as_current=False)
    app.config_from_object(config)
    return celery_futures.install(app)


def assert_json_only_and_guarded(conf: Any) -> None:
    assert (conf.task_serializer, conf.result_serializer, conf.event_serializer) == ("json", "json", "json")
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]
    assert conf.broker_transport == TRANSPORT
    assert conf.broker_transport_options[MAX_BYTES_OPTION] == DEFAULT_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("config", [{"broker_url": URL, "result_backend": URL}, EnvConfig({"REDIS_URL": URL})],
                         ids=["a plain app", "our demo app"])
def test_an_installed_app_is_json_only_and_guarded(config: dict[str, Any] | EnvConfig) -> None:
    app = installed(config)
    assert_json_only_and_guarded(app.conf)
    assert app.conf.result_backend_always_retry is True
    check_protocol_settings(app)


def test_install_before_or_after_the_configuration_gives_the_same_settings() -> None:
    early = celery_futures.install(Celery("early", set_as_current=False))
    early.config_from_object({"broker_url": URL, "result_backend": URL})
    assert_json_only_and_guarded(early.conf)
    late = Celery("late", set_as_current=False)
    late.config_from_object({"broker_url": URL, "result_backend": URL})
    late.conf.broker_url  # noqa: B018 - loads the configuration before install
    assert_json_only_and_guarded(celery_futures.install(late).conf)


def test_what_the_app_sets_itself_is_kept() -> None:
    app = installed({"broker_url": URL, "result_backend": URL, "result_backend_thread_safe": False,
                     "broker_transport_options": {"visibility_timeout": 600}})
    assert app.conf.result_backend_thread_safe is False
    assert app.conf.broker_transport_options["visibility_timeout"] == 600
    assert app.conf.broker_transport_options["unacked_restore_interval"] == 5  # ours, where it said nothing


def test_connects_give_up_after_five_seconds_unless_the_app_says_otherwise() -> None:
    """A connect to a vanished address (a failed-over master's container) must not hang a claim or a loop."""
    app = installed({"broker_url": URL, "result_backend": URL})
    backend: Any = redis_backend(app)
    assert backend.connparams["socket_connect_timeout"] == 5.0
    assert app.conf.broker_transport_options["socket_connect_timeout"] == 5.0
    own = installed({"broker_url": URL, "result_backend": URL, "redis_socket_connect_timeout": 1.5})
    own_backend: Any = redis_backend(own)
    assert own_backend.connparams["socket_connect_timeout"] == 1.5


@pytest.mark.parametrize(("config", "message"), [
    ({"task_serializer": "pickle"}, "task_serializer is 'pickle', it must be 'json'"),
    ({"accept_content": ["json", "pickle"]}, r"accept_content is \['json', 'pickle'\], it must be \['json'\]"),
    ({"broker_url": "amqp://guest@localhost//"}, "the broker must be Redis"),
    ({"result_backend": "rpc://"}, "a Redis result backend"),
])
def test_what_the_protocol_cannot_work_with_is_refused_naming_it(config: dict[str, Any], message: str) -> None:
    app = installed({"broker_url": URL, "result_backend": URL, **config})
    with pytest.raises(SettingsError, match=message):
        check_protocol_settings(app)


def test_the_worker_limit_comes_from_its_environment() -> None:
    conf: Any = installed(EnvConfig({"REDIS_URL": URL, c.ENV_MAX_MESSAGE_BYTES: "1048576"})).conf
    assert conf.broker_transport_options[MAX_BYTES_OPTION] == 1048576


def test_the_labs_plain_client_is_json_only_too() -> None:
    conf: Any = create_app(URL).conf
    assert list(conf.accept_content) == ["json"] and conf.task_serializer == "json"


def test_an_executor_refuses_an_installed_app_against_the_protocol_before_it_connects() -> None:
    """No Redis runs here: the refusal comes first, naming the setting."""
    app = installed({"broker_url": "redis://127.0.0.1:1/0", "result_backend": "redis://127.0.0.1:1/0",
                     "task_serializer": "pickle"})
    with pytest.raises(SettingsError, match="task_serializer is 'pickle'"):
        celery_futures.CeleryExecutor(app)
