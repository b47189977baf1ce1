"""Flower in a real headless Chromium (Debian's, driven by Playwright): the pages a user opens show our
worker and its pool. Screenshots go to tests/stack/artifacts/; with UPDATE_DOCS_SCREENSHOT=1 the workers
page is also saved as docs/flower-workers.png for the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.stack.conftest import ROOT, Compose, Flower, PoolSwitch

pytestmark = [pytest.mark.stack, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_PNG = ROOT / "docs" / "flower-workers.png"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
# A few finished tasks, so the tasks page has rows; sent from inside the worker container.
SEND_TASKS = (
    "from worker.tasks.demo import cpu_bound, io_sleep, noop\n"
    "results = [noop.delay() for _ in range(3)] + [cpu_bound.delay(20000), io_sleep.delay(0.2)]\n"
    "print([r.get(timeout=30) for r in results])\n"
)


@pytest.fixture(scope="module")
def tasks_sent(stack: Compose) -> None:
    stack("exec", "-T", "worker", "python", "-c", SEND_TASKS)


def test_flower_pages_show_worker_and_pool(stack: Compose, flower: Flower, tasks_sent: None) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    from playwright.sync_api import Route, expect, sync_playwright

    name = stack.worker_name("prefork")
    flower_host = urlsplit(flower.base_url).hostname
    ARTIFACTS.mkdir(exist_ok=True)

    def only_flower(route: Route) -> None:
        """Requests go to Flower on loopback and nowhere else."""
        if urlsplit(route.request.url).hostname == flower_host:
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                http_credentials={"username": flower.user, "password": flower.password},
                viewport={"width": 1280, "height": 800},
            )
            page = context.new_page()
            page.route("**/*", only_flower)

            page.goto(f"{flower.base_url}/workers")
            row = page.locator("#workers-table tr", has=page.locator(f'a[href="/worker/{quote(name)}"]'))
            expect(row).to_contain_text(name.split("@")[1])  # Flower breaks the name after the "@"
            expect(row).to_contain_text("prefork@")
            expect(row).to_contain_text("Online")
            page.screenshot(path=ARTIFACTS / "flower-workers.png", full_page=True)

            page.goto(f"{flower.base_url}/worker/{name}")
            # Flower's stylesheet capitalizes the value ("Celery.concurrency..."), hence ignore_case.
            expect(page.locator("#tab-pool")).to_contain_text(
                "celery.concurrency.prefork:TaskPool", ignore_case=True
            )
            page.screenshot(path=ARTIFACTS / "flower-worker-pool.png", full_page=True)

            page.goto(f"{flower.base_url}/tasks")
            expect(page.locator("body")).to_contain_text("worker.tasks.demo.noop")
            page.screenshot(path=ARTIFACTS / "flower-tasks.png", full_page=True)
        finally:
            browser.close()

    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_PNG.parent.mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "flower-workers.png", DOCS_PNG)


def test_the_workers_page_shows_the_pool_right_after_a_switch(stack: Compose, flower: Flower,
                                                              pool_switch: PoolSwitch) -> None:
    """``scripts/pool.sh gevent``, then the first visit: the new worker is there, online, and its page says gevent."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    pool_switch("gevent")
    name = stack.worker_name("gevent")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(http_credentials={"username": flower.user, "password": flower.password})
            page = context.new_page()
            page.goto(f"{flower.base_url}/workers")
            row = page.locator("#workers-table tr", has=page.locator(f'a[href="/worker/{quote(name)}"]'))
            expect(row).to_contain_text("gevent@")
            expect(row).to_contain_text("Online")
            page.goto(f"{flower.base_url}/worker/{name}")
            expect(page.locator("#tab-pool")).to_contain_text("celery.concurrency.gevent:TaskPool", ignore_case=True)
            page.screenshot(path=ARTIFACTS / "flower-worker-after-switch.png", full_page=True)
        finally:
            browser.close()
