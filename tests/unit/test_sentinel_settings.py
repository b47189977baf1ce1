"""Sentinel settings: a ``sentinel://`` URL is taken where a Redis URL is, and its master's name is asked for
where the setting enters (env, arguments, an app's configuration), in one line naming what is missing."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

import celery_futures
from celery_futures import CeleryExecutor, ClientSettings
from celery_futures.client.connections import standalone_app
from celery_futures.protocol.backend import backend_address, is_replicated
from celery_futures.protocol.replication import Fence, fence_of
from celery_futures.protocol.requirements import check_protocol_settings
from celery_futures.protocol.sentinel import MASTER_OPTION, redis_settings, sentinel_options
from celery_futures.protocol.settings import SentinelAddress, SettingsError, parse_redis_url, redact
from celery_futures.worker.message_guard import SENTINEL_TRANSPORT
from worker.app import EnvConfig
from worker.cli import export_to_env, summary
from worker.settings import WorkerSettings

URL = "sentinel://:pw@10.0.0.1:26379/2;sentinel://:pw@10.0.0.2:26380/2"
ENV = {"REDIS_URL": URL, "REDIS_SENTINEL_MASTER": "mymaster", "REDIS_SENTINEL_PASSWORD": "secret"}


def test_a_sentinel_url_lists_its_sentinels_and_database() -> None:
    assert parse_redis_url(URL) == SentinelAddress((("10.0.0.1", 26379), ("10.0.0.2", 26380)), 2)
    assert parse_redis_url("sentinel://h") == SentinelAddress((("h", 26379),), 0)
    assert redact(URL) == "sentinel://:***@10.0.0.1:26379/2;sentinel://:***@10.0.0.2:26380/2"


@pytest.mark.parametrize(("url", "message"), [
    ("sentinel://h:1;redis://h:2", "every part of a sentinel URL must start with sentinel://, got 'redis://h:2'"),
    ("sentinel://h:0", "has a bad port"),
    ("sentinel://h:1/1;sentinel://h:2/2", "must name one database .* got 2"),
    ("sentinel://h:1;sentinel://h:2/2", r"must name one database \(the first part's, 0\), got 2"),  # kombu would use 0
    ("sentinel://h/x", "database must be a number"),
])
def test_a_bad_sentinel_url_is_refused_naming_it(url: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"REDIS_URL.*{message}"):
        parse_redis_url(url)


def test_without_its_master_a_sentinel_url_is_one_line_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^REDIS_SENTINEL_MASTER must name the master the sentinels monitor .*"
                                            r", since REDIS_URL is a sentinel:// URL$"):
        WorkerSettings.from_env({"REDIS_URL": URL})
    with pytest.raises(SettingsError, match=r"REDIS_SENTINEL_MASTER must be the master's name"):
        WorkerSettings.from_env({**ENV, "REDIS_SENTINEL_MASTER": "my master"})
    with pytest.raises(SettingsError, match=r"^REDIS_SENTINEL_MASTER must name .*, since redis_url is a sentinel"):
        ClientSettings(URL).standalone({})
    with pytest.raises(SettingsError, match=r"^REDIS_SENTINEL_MASTER must name .*, since REDIS_URL is a sentinel"):
        ClientSettings().standalone({"REDIS_URL": URL})


def test_the_demo_worker_takes_a_sentinel_group_from_the_environment() -> None:
    settings = WorkerSettings.from_env(ENV)
    assert (settings.sentinel_master, settings.sentinel_password) == ("mymaster", "secret")
    assert "secret" not in repr(settings) and "pw" not in summary(settings)
    assert "Redis mymaster via sentinels 10.0.0.1:26379,10.0.0.2:26380/2" in summary(settings)
    exported: dict[str, str] = {}
    export_to_env(settings, exported)
    assert {k: exported[k] for k in ENV} == ENV  # what the worker's children and worker.app read


def test_both_transport_options_name_the_master_and_how_to_reach_the_sentinels() -> None:
    settings = redis_settings(URL, "mymaster", "secret")
    assert settings["broker_url"] == settings["result_backend"] == URL
    expected = sentinel_options("mymaster", "secret")
    assert settings["broker_transport_options"] == settings["result_backend_transport_options"] == expected
    assert expected["sentinel_kwargs"]["password"] == "secret" and expected["sentinel_kwargs"]["socket_timeout"] > 0
    assert redis_settings("redis://h:1/0") == {"broker_url": "redis://h:1/0", "result_backend": "redis://h:1/0"}


def installed(config: dict[str, Any] | EnvConfig) -> Celery:
    app = Celery("t", set_as_current=False)
    app.config_from_object(config)
    return celery_futures.install(app)


@pytest.mark.parametrize("config", [redis_settings(URL, "mymaster"), EnvConfig(ENV)], ids=["an app", "our demo"])
def test_an_installed_sentinel_app_is_guarded_and_fenced(config: dict[str, Any] | EnvConfig) -> None:
    app = installed(config)
    check_protocol_settings(app)
    assert app.conf.broker_transport == SENTINEL_TRANSPORT  # the message guard, on kombu's Sentinel transport
    assert app.conf.broker_transport_options[MASTER_OPTION] == "mymaster"
    assert is_replicated(app) and fence_of(app).enabled
    assert backend_address(app) == "mymaster via sentinels 10.0.0.1:26379,10.0.0.2:26380/2"


def test_a_plain_redis_app_is_not_fenced() -> None:
    app = installed(redis_settings("redis://:pw@h:6379/0"))
    assert not is_replicated(app) and not fence_of(app).enabled
    assert Fence(enabled=False).confirm(None) is True  # type: ignore[arg-type]  # no round trip at all


def test_an_app_whose_sentinel_urls_do_not_name_the_master_is_refused_by_setting() -> None:
    app = installed({"broker_url": URL, "result_backend": URL})
    with pytest.raises(SettingsError, match=r"broker_transport_options must name the master the sentinels monitor "
                                            r"\(\{'master_name': '<name>'\}\), since broker_url is a sentinel:// URL; "
                                            r"result_backend_transport_options must name .*since result_backend"):
        check_protocol_settings(app)
    with pytest.raises(SettingsError, match=r"^broker_transport_options must name the master"):
        CeleryExecutor(app)  # before it connects anywhere


def test_a_standalone_executor_builds_its_app_on_the_sentinel_group() -> None:
    settings = ClientSettings(URL, sentinel_master="mymaster").standalone({"REDIS_SENTINEL_PASSWORD": "secret"})
    app = standalone_app(settings)
    try:
        assert app.conf.result_backend_transport_options == sentinel_options("mymaster", "secret")
        assert is_replicated(app)
    finally:
        app.close()
