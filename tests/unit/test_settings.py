"""Settings and argument parsing: env vs flags, and every bad value refused with a reason."""

from __future__ import annotations

import pytest

from celery_futures import ClientSettings
from celery_futures.protocol.allowlist import Allowlist, NotAllowedError
from celery_futures.protocol.pools import POOLS
from celery_futures.protocol.settings import RedisAddress, SettingsError, parse_redis_url, redact
from worker.cli import CHECK, RUN, VALIDATE, celery_argv, export_to_env, parse_args
from worker.settings import WorkerSettings


def test_defaults() -> None:
    settings = WorkerSettings.from_env({})
    assert settings.pool is POOLS["prefork"]
    assert settings.concurrency == POOLS["prefork"].default_concurrency
    assert settings.queues == ("celery",)
    assert settings.name.startswith("prefork@")


def test_env_is_read() -> None:
    settings = WorkerSettings.from_env({"WORKER_POOL": "threads", "WORKER_CONCURRENCY": "7",
                                        "REDIS_URL": "redis://:pw@redis:6380/2", "WORKER_QUEUES": "a, b"})
    assert (settings.pool.name, settings.concurrency, settings.queues) == ("threads", 7, ("a", "b"))
    assert str(settings.redis_address) == "redis:6380/2"


def test_flag_beats_env() -> None:
    settings = WorkerSettings.from_env({"WORKER_POOL": "threads", "WORKER_CONCURRENCY": "7"},
                                       pool="gevent", concurrency="200")
    assert (settings.pool.name, settings.concurrency) == ("gevent", 200)


def test_pool_default_concurrency_follows_the_pool() -> None:
    assert WorkerSettings.from_env({"WORKER_POOL": "gevent"}).concurrency == POOLS["gevent"].default_concurrency


def test_solo_refuses_a_concurrency_it_cannot_have() -> None:
    with pytest.raises(SettingsError, match="solo pool always runs 1 task at a time"):
        WorkerSettings.from_env({}, pool="solo", concurrency="4")
    assert WorkerSettings.from_env({}, pool="solo").concurrency == 1


def test_redact_hides_the_password() -> None:
    assert redact("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert parse_redis_url("rediss://h") == RedisAddress("h", 6379, 0)


def test_parse_args_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--pool", "bogus"])
    assert exit_info.value.code == 2
    assert "valid pools: prefork, threads, gevent, solo" in capsys.readouterr().err


def test_parse_args_check_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_POOL", raising=False)
    settings, mode = parse_args(["--pool", "threads", "-c", "3", "--check"])
    assert mode == CHECK and settings.pool.name == "threads" and settings.concurrency == 3
    assert parse_args(["--validate"])[1] == VALIDATE and parse_args([])[1] == RUN


def test_celery_argv_puts_the_pool_where_celery_patches_for_it() -> None:
    settings = WorkerSettings.from_env({}, pool="gevent", concurrency="200", name="g@h", queues="io")
    argv = celery_argv(settings)
    assert argv[argv.index("-P") + 1] == "gevent"
    assert "--concurrency=200" in argv and "--hostname=g@h" in argv and "--queues=io" in argv


def test_export_round_trips() -> None:
    settings = WorkerSettings.from_env({}, pool="threads", concurrency="5", name="t@h")
    env: dict[str, str] = {}
    export_to_env(settings, env)
    assert WorkerSettings.from_env(env) == settings


def test_allowlist_patterns() -> None:
    allow = Allowlist.parse("math.*, builtins.pow")
    assert allow.admits("math.sqrt") and allow.admits("builtins.pow")
    assert not allow.admits("builtins.eval") and not allow.admits("mathx.y")
    expected = r"os\.system is not in the worker allowlist \(celery_futures_allowlist=math\.\*,builtins\.pow\)"
    with pytest.raises(NotAllowedError, match=expected):
        allow.check("os.system")


def test_default_allowlist_has_no_dangerous_builtins() -> None:
    allow = Allowlist.parse(None)
    for name in ("builtins.eval", "builtins.exec", "builtins.open", "builtins.__import__", "os.system",
                 "subprocess.run", "builtins.getattr"):
        assert not allow.admits(name), name


# -- every bad input refused where it enters, naming the input and what it allows --------------------------
@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"WORKER_POOL": "processes"}, {}, "WORKER_POOL: unknown pool 'processes'; valid pools: prefork, threads"),
        ({}, {"pool": "bogus"}, "--pool: unknown pool 'bogus'; valid pools"),
        ({"WORKER_CONCURRENCY": "0"}, {}, "WORKER_CONCURRENCY must be a positive integer, got '0'"),
        ({"WORKER_CONCURRENCY": "-1"}, {}, "WORKER_CONCURRENCY must be a positive integer"),
        ({"WORKER_CONCURRENCY": "abc"}, {}, "WORKER_CONCURRENCY must be a positive integer"),
        ({"WORKER_CONCURRENCY": "1.5"}, {}, "WORKER_CONCURRENCY must be a positive integer"),
        ({"WORKER_CONCURRENCY": ""}, {}, "WORKER_CONCURRENCY must be a positive integer"),
        ({"WORKER_CONCURRENCY": "7"}, {"concurrency": "x"}, "--concurrency must be a positive integer, got 'x'"),
        ({}, {"pool": "solo", "concurrency": "4"}, "--concurrency: the solo pool always runs 1 task at a time"),
        ({"REDIS_URL": "http://x"}, {}, "REDIS_URL must start with redis://, rediss:// or sentinel://"),
        ({"REDIS_URL": "redis://host:notaport/0"}, {}, "REDIS_URL has a bad port"),
        ({"REDIS_URL": "redis://host:0/0"}, {}, "REDIS_URL has a bad port"),
        ({"REDIS_URL": "redis://host:70000/0"}, {}, "REDIS_URL has a bad port"),
        ({"REDIS_URL": "redis://host/abc"}, {}, "REDIS_URL database must be a number"),
        ({}, {"redis_url": "http://x"}, "--redis-url must start with redis://"),
        ({"WORKER_LOGLEVEL": "chatty"}, {}, "WORKER_LOGLEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({}, {"loglevel": "loud"}, "--loglevel must be one of DEBUG"),
        ({"WORKER_QUEUES": ""}, {}, "WORKER_QUEUES names no queue"),
        ({"WORKER_QUEUES": " , "}, {}, "WORKER_QUEUES names no queue"),
        ({"WORKER_QUEUES": "a,,b"}, {}, "WORKER_QUEUES must be comma-separated queue names .* '' is not one"),
        ({"WORKER_QUEUES": "my queue"}, {}, "WORKER_QUEUES must be .* 'my queue' is not one"),
        ({}, {"queues": "io,cpu/1"}, "--queues must be .* 'cpu/1' is not one"),
        ({"WORKER_NAME": "w1"}, {}, "WORKER_NAME must be name@host, each of letters, digits"),
        ({"WORKER_NAME": ""}, {}, "WORKER_NAME must be name@host"),
        ({"WORKER_NAME": "w1@%h"}, {}, "WORKER_NAME must be name@host"),
        ({"WORKER_NAME": "a@b@c"}, {}, "WORKER_NAME must be name@host"),
        ({}, {"name": "two words@h"}, "--name must be name@host"),
        ({"WORKER_ALLOWLIST": "math:sqrt"}, {}, "WORKER_ALLOWLIST has the pattern 'math:sqrt', which can never match"),
        ({"WORKER_ALLOWLIST": "math.*,pow"}, {}, "WORKER_ALLOWLIST has the pattern 'pow'"),
        ({"WORKER_ALLOWLIST": "os.system()"}, {}, r"the pattern 'os\.system\(\)'"),
        ({"WORKER_ALLOWLIST": "math.[sq"}, {}, r"the pattern 'math\.\[sq'"),
        ({"WORKER_CONNECT_ATTEMPTS": "-1"}, {}, "WORKER_CONNECT_ATTEMPTS must be a whole number ≥ 0, got '-1'"),
        ({}, {"connect_attempts": "many"}, "--connect-attempts must be a whole number ≥ 0"),
        ({"RESULT_TTL_SECONDS": "0"}, {}, "RESULT_TTL_SECONDS must be a whole number of seconds from 1 to 31536000"),
        ({"RESULT_TTL_SECONDS": "-5"}, {}, "RESULT_TTL_SECONDS must be a whole number of seconds from 1"),
        ({"RESULT_TTL_SECONDS": "soon"}, {}, "RESULT_TTL_SECONDS must be a whole number of seconds"),
        ({"RESULT_TTL_SECONDS": str(10**12)}, {}, "RESULT_TTL_SECONDS must be a whole number of seconds"),
        ({"WORKER_EVENT_FLUSH_SECONDS": "-1"}, {}, "WORKER_EVENT_FLUSH_SECONDS must be a number of seconds from 0"),
        ({"WORKER_EVENT_FLUSH_SECONDS": "soon"}, {}, "WORKER_EVENT_FLUSH_SECONDS must be a number of seconds"),
        ({"WORKER_EVENT_FLUSH_SECONDS": "nan"}, {}, "WORKER_EVENT_FLUSH_SECONDS must be a number of seconds"),
        ({"WORKER_EVENT_FLUSH_SECONDS": "60"}, {}, "WORKER_EVENT_FLUSH_SECONDS must be a number of seconds"),
    ],
)
def test_bad_worker_input_is_refused_naming_it(env: dict[str, str], flags: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        WorkerSettings.from_env(env, **flags)


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"REDIS_URL": "unix:///tmp/redis.sock"}, {}, "REDIS_URL must start with redis://"),
        ({}, {"redis_url": "redis://h:x/0"}, "redis_url has a bad port"),
        ({"PRODUCER_QUEUE": ""}, {}, "PRODUCER_QUEUE must be a queue name of letters"),
        ({"PRODUCER_QUEUE": "a,b"}, {}, "PRODUCER_QUEUE must be a queue name .*, got 'a,b'"),
        ({}, {"queue": "with space"}, "queue must be a queue name"),
        ({"WORKER_ALLOWLIST": "builtins:pow"}, {}, "WORKER_ALLOWLIST has the pattern 'builtins:pow'"),
        ({"RESULT_TTL_SECONDS": "0"}, {}, "RESULT_TTL_SECONDS must be a whole number of seconds from 1"),
        ({"PRODUCER_CONNECT_TIMEOUT": "0"}, {}, "PRODUCER_CONNECT_TIMEOUT must be a number of seconds > 0"),
        ({"PRODUCER_CONNECT_TIMEOUT": "nan"}, {}, "PRODUCER_CONNECT_TIMEOUT must be a number of seconds"),
        ({"PRODUCER_CONNECT_TIMEOUT": "soon"}, {}, "PRODUCER_CONNECT_TIMEOUT must be a number of seconds"),
        ({"PRODUCER_SEND_TIMEOUT": "-1"}, {}, "PRODUCER_SEND_TIMEOUT must be a number of seconds > 0 and ≤ 86400"),
        ({"PRODUCER_SEND_TIMEOUT": "1e300"}, {}, "PRODUCER_SEND_TIMEOUT must be a number of seconds"),
        ({"PRODUCER_MAX_PAYLOAD_BYTES": "0"}, {}, "PRODUCER_MAX_PAYLOAD_BYTES must be a whole number of bytes from 1"),
        ({"PRODUCER_MAX_PAYLOAD_BYTES": "1MB"}, {}, "PRODUCER_MAX_PAYLOAD_BYTES must be a whole number of bytes"),
        ({"PRODUCER_MAX_PAYLOAD_BYTES": str(2**30)}, {}, "PRODUCER_MAX_PAYLOAD_BYTES .* to 536870912"),
    ],
)
def test_bad_producer_input_is_refused_naming_it(env: dict[str, str], args: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        ClientSettings.from_env(env, **args).standalone(env)


def test_producer_settings_read_the_environment() -> None:
    env = {"PRODUCER_QUEUE": "io:fast", "PRODUCER_CONNECT_TIMEOUT": "2.5", "PRODUCER_SEND_TIMEOUT": "30",
           "PRODUCER_MAX_PAYLOAD_BYTES": "2048", "WORKER_ALLOWLIST": ""}
    settings = ClientSettings.from_env(env).standalone(env)
    assert (settings.queue, settings.connect_timeout_seconds, settings.send_timeout_seconds) == ("io:fast", 2.5, 30)
    assert settings.max_payload_bytes == 2048 and settings.allowlist == Allowlist((), "WORKER_ALLOWLIST")
    assert ClientSettings.from_env({"PRODUCER_QUEUE": "x"}, queue="y").standalone({"PRODUCER_QUEUE": "x"}).queue == "y"


def test_with_an_app_the_environment_does_not_say_where_to_connect() -> None:
    """REDIS_URL and PRODUCER_QUEUE describe a standalone executor; with an app, the app decides."""
    env = {"REDIS_URL": "redis://elsewhere:6379/0", "PRODUCER_QUEUE": "other"}
    settings = ClientSettings.from_env(env)
    assert (settings.redis_url, settings.queue, settings.allowlist, settings.result_ttl) == (None, None, None, None)


@pytest.mark.parametrize("pattern", ["*", "math.*", "builtins.pow", "math.[sc]*", "math.[!s]qrt", "worker.*.spin",
                                     "my_mod.f?"])
def test_allowlist_patterns_that_can_match_are_accepted(pattern: str) -> None:
    assert Allowlist.parse(pattern).patterns == (pattern,)
