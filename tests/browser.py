"""A real ``datasette`` server on 127.0.0.1 and headless Debian Chromium, for the browser tests."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WITHOUT_PLUGIN = ("import sys; from datasette.plugins import pm; pm.unregister(name='runtime_truth'); "
                  "from datasette.cli import cli; sys.argv[0] = 'datasette'; cli()")


@contextlib.contextmanager
def datasette_server(*args, log_path=None, startup_timeout_s=60, env_no_plugin=False):
    """Run ``datasette serve ARGS`` on a free port; yield its base URL; stop it afterwards.
    ``env_no_plugin``: as if the plugin were not installed (the no-plugin bundle)."""
    port = free_port()
    start = ["-c", WITHOUT_PLUGIN] if env_no_plugin else ["-m", "datasette"]
    command = [sys.executable, *start, "serve", *map(str, args),
               "-h", "127.0.0.1", "-p", str(port)]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base + "/-/versions.json", startup_timeout_s, log_path)
        yield base
    finally:
        stop(process)
        if log_path:
            log.close()


def stop(process, timeout_s=10):
    """End a server this test started, by its PID: terminate, then kill if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_up(process, url, timeout_s, log_path):
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            output = open(log_path).read() if log_path else ""
            raise RuntimeError(f"datasette exited with {process.returncode}: {output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"datasette did not answer {url} within {timeout_s} s")
        time.sleep(0.1)


@contextlib.contextmanager
def chromium():
    """A headless Chromium browser driven by Playwright, never a downloaded build."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/ensure-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
