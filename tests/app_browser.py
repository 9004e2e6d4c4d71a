"""``dla app`` in a real browser: the server in a child process, and headless Chromium driven by Selenium.

The browser is Debian's ``chromium`` and its driver ``chromium-driver`` (``make test`` installs them), named by
path so that Selenium never looks for, or downloads, a browser of its own (no Selenium Manager). The browser
resolves no host but 127.0.0.1 (``--host-resolver-rules``): the page is tried as on a machine with no network, and
every request it makes is recorded (Chromium's performance log) so that a test can check that none left the
machine. Shared by ``tests/test_app.py`` and ``benchmarks/app_screenshot.py``.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
START_SECONDS = 90  # the server's start: Python, torch, Gradio and the checkpoint, on a busy 2-core machine
RESULT_SECONDS = 30  # a prediction on the page


def missing() -> str | None:
    """Why the browser test cannot run here (None: it can)."""
    for module, install in [("gradio", "pip install 'dla[app]'"), ("selenium", "pip install selenium")]:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({install})"
    for path, package in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]:
        if not path.is_file():
            return f"{path} not found (Debian package {package}; `make test` installs it)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(arguments: Sequence[str], preload: Sequence[str] = (), python_path: Sequence[str] = ()) -> Iterator[str]:
    """``dla app ARGUMENTS --port P`` in a child process, on a free port; yields the page's URL once it answers.

    ``preload``: modules the child imports first (a test's stand-in models register themselves on import), from
    ``python_path`` (added to ``PYTHONPATH``). The child is stopped on exit; its output is in the error when it
    dies or does not answer in ``START_SECONDS``.
    """
    port = free_port()
    imports = "".join(f"import {name}; " for name in preload)
    command = [sys.executable, "-c", f"import sys; {imports}from dla.cli import main; sys.exit(main(sys.argv[1:]))"]
    paths = [*map(str, python_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen([*command, "app", *arguments, "--port", str(port)], stdout=log, stderr=log, env=environment)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_until_served(url, child, log)
            yield url
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _wait_until_served(url: str, child: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    log.seek(0)
    state = f"exited with {child.returncode}" if child.poll() is not None else f"did not answer in {START_SECONDS} s"
    raise RuntimeError(f"dla app {state}:\n{log.read()[-4000:]}")


@contextmanager
def chromium(width: int = 1280, height: int = 1000) -> Iterator:
    """Headless Chromium (``/usr/bin/chromium`` through ``/usr/bin/chromedriver``) that reaches 127.0.0.1 only and
    records the requests of its pages."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in [
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox does not start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no network: no other host resolves
        "--disable-background-networking",
        "--no-first-run",
    ]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver) -> list[str]:
    """The URLs the browser's pages requested since the last call (Chromium's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def upload(driver, path: Path) -> None:
    """Give ``path`` to the page's upload (``elem_id="upload"``, a hidden file input) as a user picking it would."""
    from selenium.webdriver.support import expected_conditions

    wait_until(driver, expected_conditions.presence_of_element_located(("css selector", "#upload input[type=file]")))
    driver.find_element("css selector", "#upload input[type=file]").send_keys(str(path))


def wait_until(driver, condition, seconds: float = RESULT_SECONDS):
    """What ``condition`` (a Selenium expected condition) returns once true; ``TimeoutException`` after ``seconds``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def wait_for_text(driver, selector: str, text: str):
    """The element matching CSS ``selector`` once its text contains ``text``."""
    from selenium.webdriver.support import expected_conditions

    wait_until(driver, expected_conditions.text_to_be_present_in_element(("css selector", selector), text))
    return driver.find_element("css selector", selector)


def wait_for(driver, selector: str):
    """The first element matching CSS ``selector``, once there and shown."""
    from selenium.webdriver.support import expected_conditions

    return wait_until(driver, expected_conditions.visibility_of_element_located(("css selector", selector)))
