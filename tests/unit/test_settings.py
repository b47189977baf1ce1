"""Settings and argument parsing: env vs flags, and every bad value refused with a reason."""

from __future__ import annotations

import pytest

from worker.allowlist import Allowlist, NotAllowedError
from worker.cli import celery_argv, export_to_env, parse_args
from worker.pools import POOLS
from worker.settings import SettingsError, WorkerSettings, parse_redis_url, redact


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


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", ""])
def test_bad_concurrency_is_refused(bad: str) -> None:
    with pytest.raises(SettingsError, match="concurrency must be a positive integer"):
        WorkerSettings.from_env({"WORKER_CONCURRENCY": bad})


def test_solo_refuses_a_concurrency_it_cannot_have() -> None:
    with pytest.raises(SettingsError, match="solo pool always runs 1 task at a time"):
        WorkerSettings.from_env({}, pool="solo", concurrency="4")
    assert WorkerSettings.from_env({}, pool="solo").concurrency == 1


def test_bad_pool_from_env_is_refused() -> None:
    with pytest.raises(SettingsError, match="valid pools: prefork, threads, gevent, solo"):
        WorkerSettings.from_env({"WORKER_POOL": "processes"})


@pytest.mark.parametrize("url", ["http://x", "redis://host:notaport/0", "redis://host/abc"])
def test_bad_redis_url_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        WorkerSettings.from_env({"REDIS_URL": url})


def test_redact_hides_the_password() -> None:
    assert redact("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert parse_redis_url("rediss://h").port == 6379


def test_bad_loglevel_is_refused() -> None:
    with pytest.raises(SettingsError, match="log level"):
        WorkerSettings.from_env({"WORKER_LOGLEVEL": "chatty"})


def test_parse_args_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--pool", "bogus"])
    assert exit_info.value.code == 2
    assert "valid pools: prefork, threads, gevent, solo" in capsys.readouterr().err


def test_parse_args_check_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER_POOL", raising=False)
    settings, check = parse_args(["--pool", "threads", "-c", "3", "--check"])
    assert check and settings.pool.name == "threads" and settings.concurrency == 3


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
    expected = r"os\.system is not in the worker allowlist \(WORKER_ALLOWLIST=math\.\*,builtins\.pow\)"
    with pytest.raises(NotAllowedError, match=expected):
        allow.check("os.system")


def test_default_allowlist_has_no_dangerous_builtins() -> None:
    allow = Allowlist.parse(None)
    for name in ("builtins.eval", "builtins.exec", "builtins.open", "builtins.__import__", "os.system",
                 "subprocess.run", "builtins.getattr"):
        assert not allow.admits(name), name


@pytest.mark.parametrize("bad", ["0", "-5", "soon"])
def test_result_ttl_must_be_at_least_a_second(bad: str) -> None:
    with pytest.raises(SettingsError, match="RESULT_TTL_SECONDS"):
        WorkerSettings.from_env({"RESULT_TTL_SECONDS": bad})
