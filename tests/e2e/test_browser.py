"""The web page end to end in headless Chromium (Debian's ``chromium`` + ``chromium-driver``):
type a question, get the answer with citations, open a cited passage; a screenshot is
kept in tests/artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

HAVE_BROWSER = Path(CHROMIUM).exists() and Path(DRIVER).exists()
if not HAVE_BROWSER and os.environ.get("RAGFLEET_REQUIRE_BROWSER") == "1":
    raise RuntimeError(
        "RAGFLEET_REQUIRE_BROWSER=1 but /usr/bin/chromium or chromedriver is missing"
    )
pytestmark = pytest.mark.skipif(
    not HAVE_BROWSER,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def server(collection_factory: Any) -> Iterator[tuple[str, str]]:
    from tests.e2e._server import running

    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.settings import ServeSettings

    key, record = new_key("browser", ("read",), iterations=1000)
    app = create_app({"demo": collection_factory(shards=2)}, ServeSettings(), KeyStore([record]))
    with running(app) as url:
        yield url, key


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1200,1400"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_ask_cite_and_open_passage(server: tuple[str, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, key = server
    wait = WebDriverWait(browser, 20)
    browser.get(url + "/")
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.ID, "question").click()  # leaving the key field loads the list
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#collection option"))
    browser.find_element(By.ID, "question").send_keys("Who won Super Bowl 50?")
    browser.find_element(By.ID, "ask").click()

    cite = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#answer button.cite")))
    assert cite.text == "[1]"
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits li")
    assert len(hits) >= 1
    assert "dense" in hits[0].find_element(By.CLASS_NAME, "scores").text
    stages = [r.get_attribute("data-stage") for r in browser.find_elements(By.CSS_SELECTOR, ".row")]
    assert stages == ["embed", "search", "rerank", "generate"]
    assert "budget" in browser.find_element(By.ID, "total").text

    cite.click()
    passage = wait.until(ec.visibility_of_element_located((By.ID, "passage")))
    first_hit_text = browser.execute_script("return lastHits[0].text")
    assert passage.text.strip() == first_hit_text.strip()
    assert browser.find_element(By.CSS_SELECTOR, "#passage mark").text  # the cited span
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "browser_ask.png"))


def test_wrong_key_shows_the_error(server: tuple[str, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser.get(url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.find_element(By.ID, "key").clear()
    browser.find_element(By.ID, "key").send_keys("rf_00000000_wrong")
    browser.find_element(By.ID, "question").send_keys("anything")
    browser.find_element(By.ID, "ask").click()
    status = WebDriverWait(browser, 20).until(
        lambda d: (
            d.find_element(By.ID, "status").text.startswith("401")
            and d.find_element(By.ID, "status")
        )
    )
    assert "invalid_key" in status.text
