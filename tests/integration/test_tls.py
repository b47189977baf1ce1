"""TLS to Redis, as docs/security.md tells a real deployment to use it: a ``rediss://`` URL whose query asks for
certificate verification against the deployment's CA. A real worker and a real client talk through a
TLS-only redis-server (no plaintext port), and a client that cannot verify the server is refused."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from celery import Celery

from producer.processes import RedisServer, WorkerFactory, free_port, wait_until
from worker.app import create_app

TIMEOUT = 30


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> None:
    """A throwaway CA, and a server certificate it signed for 127.0.0.1."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=cfx test CA", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=directory)
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "san.cnf", cwd=directory)


@dataclass
class TlsRedisServer(RedisServer):
    """A redis-server that speaks only TLS; its URL verifies the server against our CA."""

    def url(self, db: int = 0) -> str:
        ca = quote(str(self.workdir / "ca.crt"))
        return f"rediss://:{self.password}@127.0.0.1:{self.port}/{db}?ssl_cert_reqs=required&ssl_ca_certs={ca}"


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedisServer]:
    binary, workdir = shutil.which("redis-server"), tmp_path_factory.mktemp("tls-redis")
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("needs redis-server and openssl")
    make_certificates(workdir)
    port, password = free_port(), secrets.token_urlsafe(16)
    process = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = TlsRedisServer(port, password, process, workdir)
    wait_until(server.answers, 15, "TLS redis-server")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_app(tls_redis: TlsRedisServer) -> Iterator[Celery]:
    app = create_app(tls_redis.url())
    yield app
    app.close()


def test_a_worker_runs_tasks_over_verified_tls(tls_redis: TlsRedisServer, tls_app: Celery, tmp_path: Path) -> None:
    factory = WorkerFactory(tls_redis, tmp_path, tls_app)
    try:
        worker = factory.start("threads", 2)
        result = tls_app.send_task("worker.tasks.demo.record", args=(secrets.token_hex(8),), queue=worker.queue)
        assert result.get(timeout=TIMEOUT) == 1
    finally:
        factory.stop_all()


def test_a_client_that_cannot_verify_the_server_is_refused(tls_redis: TlsRedisServer) -> None:
    unverifiable = tls_redis.url().split("&ssl_ca_certs=")[0]  # the system's CAs never signed our test CA
    with redis.Redis.from_url(unverifiable, socket_connect_timeout=5) as client, \
            pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()


def test_plaintext_is_refused(tls_redis: TlsRedisServer) -> None:
    with redis.Redis(host="127.0.0.1", port=tls_redis.port, password=tls_redis.password,
                     socket_connect_timeout=5, socket_timeout=5) as plain, pytest.raises(redis.ConnectionError):
        plain.ping()
