"""The dashboard at /ui in a real headless browser (Debian's chromium driven by Selenium
through chromedriver) against a real `bentoml serve` on the bundled data.

Screenshots (desktop and phone width) are written to `test-artifacts/` at the repository
root. Without chromium the tests skip, except under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = REPO / "test-artifacts"
WAIT_SECONDS = 20
# What Chromium logs for a response the page expects (the wrong key's 401).
EXPECTED_401 = "the server responded with a status of 401"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        if os.environ.get("CI"):
            pytest.fail(
                "CI needs chromium and chromedriver (apt-get install chromium chromium-driver)"
            )
        pytest.skip("no chromium/chromedriver (Debian: apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver, served: str) -> WebDriver:
    """The dashboard, opened fresh (no key in this tab's session yet)."""
    browser.set_window_size(1280, 900)
    browser.get(f"{served}/ui/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{served}/ui/#/")
    browser.get_log("browser")  # type: ignore[no-untyped-call]  # an empty console to start
    return browser


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WAIT_SECONDS)


def enter_key(driver: WebDriver, key: str) -> None:
    field = wait(driver).until(
        expected_conditions.visibility_of_element_located((By.ID, "key-input"))
    )
    field.send_keys(key)
    field.send_keys(Keys.ENTER)


def console_problems(driver: WebDriver, allowed: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Console errors and every CSP report, but for the `allowed` messages."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        entry
        for entry in entries
        if (entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"])
        and not any(text in entry["message"] for text in allowed)
    ]


def test_a_wrong_key_shows_the_401_message(page: WebDriver) -> None:
    enter_key(page, "pw_test_000000000000_not-a-key")
    search = wait(page).until(
        expected_conditions.visibility_of_element_located((By.ID, "search-input"))
    )
    search.send_keys("charizard")
    message = wait(page).until(
        expected_conditions.visibility_of_element_located((By.ID, "message"))
    )
    assert "not accepted (401)" in message.text
    assert page.find_element(By.ID, "key-form").is_displayed()  # asked again
    assert page.execute_script("return sessionStorage.getItem('pokewatch.apiKey')") is None
    assert "not-a-key" not in page.current_url  # the key is never in a URL
    assert console_problems(page, allowed=(EXPECTED_401,)) == []


def test_search_by_keyboard_then_the_card_chart(
    page: WebDriver, http: httpx.Client, api_key: str
) -> None:
    enter_key(page, api_key)
    search = wait(page).until(
        expected_conditions.visibility_of_element_located((By.ID, "search-input"))
    )
    assert page.switch_to.active_element == search  # focus lands in the search box
    search.send_keys("charizard 201")
    card_id = "sv2a_151_charizard_ex___201_165"
    wait(page).until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f'li[data-card-id="{card_id}"] a')
        )
    )
    search.send_keys(Keys.TAB)  # the first result's link
    page.switch_to.active_element.send_keys(Keys.ENTER)
    chart = wait(page).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#chart[data-points]"))
    )
    rows = http.get(f"/v1/cards/{card_id}/history").json()["rows"]
    assert chart.get_attribute("data-points") == str(len(rows))
    assert chart.get_attribute("data-band") == "true"
    assert page.find_elements(By.CSS_SELECTOR, "#chart canvas")
    answer = http.get(f"/v1/cards/{card_id}").json()
    assert page.find_element(By.ID, "card-title").text == answer["name"]
    assert f"${answer['market_price']:.2f}" in page.find_element(By.ID, "card-answer").text
    summary = page.find_element(By.ID, "chart-summary").text
    assert f"{len(rows)} observed days" in summary
    assert page.find_element(By.ID, "stale").is_displayed()  # the bundled data is old
    assert console_problems(page) == []


def test_the_screener_lists_the_apis_buys_in_order_and_opens_a_card_with_markers(
    page: WebDriver, http: httpx.Client, api_key: str
) -> None:
    enter_key(page, api_key)
    page.get(page.current_url.split("#")[0] + "#/screener")
    expected = [
        entry["card_id"]
        for entry in http.get("/v1/signals", params={"signal": "BUY", "limit": 100}).json()["items"]
    ]
    assert expected, "the bundled data has BUYs on its last day"
    wait(page).until(
        lambda driver: (
            len(driver.find_elements(By.CSS_SELECTOR, "#screener-rows tr")) == len(expected)
        )
    )
    listed = [
        row.get_attribute("data-card-id")
        for row in page.find_elements(By.CSS_SELECTOR, "#screener-rows tr")
    ]
    assert listed == expected
    assert "Out of sample" in page.find_element(By.ID, "backtest").text

    strongest = expected[0]
    page.find_element(By.CSS_SELECTOR, f'tr[data-card-id="{strongest}"] a').click()
    chart = wait(page).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#chart[data-points]"))
    )
    rows = http.get(f"/v1/cards/{strongest}/history").json()["rows"]
    buys = sum(row["signal"] == "BUY" for row in rows)
    assert buys >= 1  # its latest day is a BUY
    assert chart.get_attribute("data-buy-markers") == str(buys)
    assert chart.get_attribute("data-sell-markers") == str(
        sum(row["signal"] == "SELL" for row in rows)
    )

    page.find_element(By.CSS_SELECTOR, 'button[data-range="30"]').click()
    last = date.fromisoformat(rows[-1]["date"])
    recent = [row for row in rows if date.fromisoformat(row["date"]) > last - timedelta(days=30)]
    wait(page).until(lambda driver: chart.get_attribute("data-points") == str(len(recent)))
    assert (
        page.find_element(By.CSS_SELECTOR, 'button[data-range="30"]').get_attribute("aria-pressed")
        == "true"
    )

    ARTIFACTS.mkdir(exist_ok=True)
    page.save_screenshot(str(ARTIFACTS / "dashboard-desktop.png"))
    page.set_window_size(390, 844)
    wait(page).until(lambda driver: driver.execute_script("return window.innerWidth") <= 390)
    overflow = page.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    page.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))
    assert console_problems(page) == []


def test_the_dashboard_is_public_with_a_strict_policy(served: str) -> None:
    answer = httpx.get(f"{served}/ui/")
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    assert "<script>" not in answer.text
    assert "style=" not in answer.text
    # The data stays behind the key.
    assert httpx.get(f"{served}/v1/cards").status_code == 401
