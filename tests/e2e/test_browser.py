"""The demo SPA in headless Chromium (Debian's package, driven by Selenium) against the whole
offline stack: the gateway serves the SPA, the sandbox serves Stripe.js and takes the payment,
then delivers its signed webhooks to the gateway. Screenshots of each final page are kept under
artifacts/screenshots/; the paid invoice's PDF is downloaded through its link. A plan is bought
in the same embedded checkout, canceled at period end in the sandbox's portal page, resumed and
canceled now in the SPA."""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import httpx
import pytest
import pytest_asyncio
from pypdf import PdfReader
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from shared import INTERNAL_TOKEN_HEADER
from stripe_sandbox import DECLINED_CARD, SUCCEEDING_CARD
from tests.support.offline_stack import OfflineStack, start_offline_stack
from tests.support.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# `make test` installs Debian's packages when missing and passes its paths on.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_SECONDS = 30


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def offline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OfflineStack]:
    tmp_path = tmp_path_factory.mktemp("browser")
    async with start_offline_stack(tmp_path, spa_dir=ROOT / "spa") as running:
        yield running


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        # Never a skip: in CI and locally, a browser test that did not run must be seen failing.
        pytest.fail(
            f"the browser test needs Debian's chromium and chromium-driver ({', '.join(missing)} "
            "missing): `make test` installs them",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
    ):
        options.add_argument(flag)
    # Explicit paths: selenium-manager must never look for or download a driver.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # Headless Chromium saves downloads only where it is told to.
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Purchase:
    token: str
    product_id: str
    unit_amount: int


T = TypeVar("T")


class _Wait(WebDriverWait[WebDriver]):
    """Selenium's wait, where a check that ran while the page was navigating (the click before it
    leads to another page) is asked again, as for an element not there yet: Chromedriver
    answers it "aborted by navigation", which Selenium's wait does not ignore (the test failed
    on it once under the full suite's load)."""

    def until(self, method: Callable[[WebDriver], Literal[False] | T], message: str = "") -> T:
        def check(driver: WebDriver) -> Literal[False] | T:
            try:
                return method(driver)
            except WebDriverException as exc:
                if "aborted by navigation" not in (exc.msg or ""):
                    raise
                return False

        return super().until(check, message)


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return _Wait(driver, WAIT_SECONDS)


def register(driver: WebDriver, base_url: str) -> None:
    """A new user registers in the SPA and lands in the shop, logged in."""
    driver.get(base_url + "/")
    driver.execute_script("window.sessionStorage.clear()")
    driver.get(base_url + "/")
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    wait(driver).until(ec.visibility_of_element_located((By.ID, "register-form")))
    driver.find_element(By.ID, "register-name").send_keys("Browser Buyer")
    driver.find_element(By.ID, "register-email").send_keys(email)
    driver.find_element(By.ID, "register-password").send_keys("browser-password-123")
    driver.find_element(By.ID, "register-submit").click()


def token_of(driver: WebDriver) -> str:
    token: str = driver.execute_script("return window.sessionStorage.getItem('facturation.token')")
    return token


def register_and_open_checkout(driver: WebDriver, base_url: str, product_id: str) -> str:
    """A new user registers in the SPA, buys one ``product_id`` and gets the card form."""
    register(driver, base_url)
    quantity = wait(driver).until(
        ec.visibility_of_element_located(
            (By.CSS_SELECTOR, f"#products input[data-product-id='{product_id}']")
        )
    )
    quantity.clear()
    quantity.send_keys("1")
    driver.find_element(By.ID, "validate-basket").click()
    wait(driver).until(ec.visibility_of_element_located((By.ID, "checkout-button"))).click()
    wait(driver).until(ec.visibility_of_element_located((By.ID, "sandbox-card-number")))
    return token_of(driver)


def pay_with(driver: WebDriver, card: str) -> None:
    driver.find_element(By.ID, "sandbox-card-number").send_keys(card)
    driver.find_element(By.ID, "sandbox-card-expiry").send_keys("12 / 34")
    driver.find_element(By.ID, "sandbox-card-cvc").send_keys("123")
    driver.find_element(By.ID, "sandbox-pay").click()


def paid_product(base_url: str) -> tuple[str, int]:
    products = httpx.get(f"{base_url}/api/v1/products", timeout=10).json()["products"]
    product = next(p for p in products if p["unit_amount"] > 0)
    return product["id"], product["unit_amount"]


def buy(driver: WebDriver, base_url: str, card: str) -> Purchase:
    product_id, unit_amount = paid_product(base_url)
    token = register_and_open_checkout(driver, base_url, product_id)
    pay_with(driver, card)
    return Purchase(token=token, product_id=product_id, unit_amount=unit_amount)


def invoices_of(base_url: str, token: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{base_url}/api/v1/billing/invoices",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, object]] = response.json()["data"]
    return data


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    assert driver.save_screenshot(str(path))
    return path


def downloaded(folder: Path, name: str) -> bytes:
    """The bytes of a finished download (Chromium writes ``.crdownload`` until it is done)."""
    path = folder / name
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        assert time.monotonic() < deadline, f"no {name} in {sorted(folder.iterdir())}"
        time.sleep(0.1)
    return path.read_bytes()


async def test_a_new_user_pays_with_4242_and_sees_the_return_page_complete_and_invoice_paid(
    offline: OfflineStack, browser: WebDriver, downloads: Path
) -> None:
    def scenario() -> Purchase:
        purchase = buy(browser, offline.url, SUCCEEDING_CARD)
        wait(browser).until(ec.url_contains("session_id=cs_test_"))
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(
                (By.ID, "return-status"), "data-status", "complete"
            )
        )
        # The return page polls until the webhooks have turned into a paid invoice.
        paid_row = wait(browser).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "#invoices tr[data-status='paid']"))
        )
        assert "paid" in paid_row.text
        assert f"{purchase.unit_amount / 100:.2f}" in paid_row.text
        screenshot(browser, "checkout-paid.png")
        return purchase

    purchase = await asyncio.to_thread(scenario)

    (invoice,) = invoices_of(offline.url, purchase.token)
    number = str(invoice["number"])

    def download_the_pdf() -> bytes:
        link = browser.find_element(
            By.CSS_SELECTOR, "#invoices tr[data-status='paid'] a.invoice-pdf"
        )
        link.click()
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(
                (By.CSS_SELECTOR, "#invoices tr[data-status='paid'] a.invoice-pdf"),
                "data-state",
                "done",
            )
        )
        return downloaded(downloads, f"{number}.pdf")

    document = await asyncio.to_thread(download_the_pdf)
    assert document.startswith(b"%PDF-")
    assert number in "".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)

    assert browser.find_element(By.ID, "return-payment-status").text == "paid"
    assert invoice["status"] == "paid"
    assert invoice["amount_paid"] == purchase.unit_amount
    assert invoice["amount_remaining"] == 0
    assert (SCREENSHOTS / "checkout-paid.png").stat().st_size > 0


async def sandbox_event_ids(offline: OfflineStack) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{offline.sandbox.url}/sandbox/events")
    return [event["id"] for event in response.json()["data"]]


async def test_a_declined_card_shows_the_error_and_creates_no_paid_invoice(
    offline: OfflineStack, browser: WebDriver
) -> None:
    events_before = await sandbox_event_ids(offline)

    def scenario() -> Purchase:
        purchase = buy(browser, offline.url, DECLINED_CARD)
        wait(browser).until(
            ec.text_to_be_present_in_element(
                (By.ID, "sandbox-checkout-error"), "Your card was declined."
            )
        )
        screenshot(browser, "checkout-declined.png")
        return purchase

    purchase = await asyncio.to_thread(scenario)

    assert "session_id=" not in browser.current_url
    assert browser.find_element(By.ID, "sandbox-pay").is_enabled()
    await asyncio.sleep(1)  # room for any (wrong) webhook delivery to land
    assert await sandbox_event_ids(offline) == events_before
    assert invoices_of(offline.url, purchase.token) == []


def refund_in_full(offline: OfflineStack, order_id: str) -> None:
    """What an operator does: the private operations route, with the internal credential."""
    response = httpx.post(
        f"{offline.stack.facturation_url}/internal/v1/orders/{order_id}/refunds",
        json={"reason": "requested_by_customer"},
        headers={
            INTERNAL_TOKEN_HEADER: offline.stack.internal_token,
            "Idempotency-Key": f"browser-{order_id}",
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text


async def test_the_return_page_shows_the_paid_order_and_product_then_the_refunded_state(
    offline: OfflineStack, browser: WebDriver
) -> None:
    def scenario() -> Purchase:
        purchase = buy(browser, offline.url, SUCCEEDING_CARD)
        # The status request fulfils the order itself: paid and granted without the webhook.
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(
                (By.ID, "return-order"), "data-status", "paid"
            )
        )
        product = wait(browser).until(
            ec.visibility_of_element_located(
                (By.CSS_SELECTOR, f"#entitlements tr[data-product-id='{purchase.product_id}']")
            )
        )
        assert "active" in product.text
        order_row = browser.find_element(By.CSS_SELECTOR, "#orders tr[data-order-id]")
        order_id = str(order_row.get_attribute("data-order-id"))
        screenshot(browser, "order-paid.png")

        refund_in_full(offline, order_id)
        browser.find_element(By.ID, "refresh-orders").click()
        refunded = wait(browser).until(
            ec.visibility_of_element_located(
                (By.CSS_SELECTOR, f"#orders tr[data-order-id='{order_id}'][data-status='refunded']")
            )
        )
        assert refunded.text.count(f"{purchase.unit_amount / 100:.2f}") == 2
        wait(browser).until(ec.visibility_of_element_located((By.ID, "no-entitlements")))
        screenshot(browser, "order-refunded.png")
        return purchase

    purchase = await asyncio.to_thread(scenario)

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(
            f"{offline.url}/api/v1/billing/orders",
            headers={"Authorization": f"Bearer {purchase.token}"},
        )
    (order,) = response.json()["data"]
    assert (order["status"], order["amount_refunded"]) == ("refunded", purchase.unit_amount)


def monthly_plan(base_url: str) -> dict[str, object]:
    products = httpx.get(f"{base_url}/api/v1/products", timeout=10).json()["products"]
    plan: dict[str, object] = next(
        p for p in products if p["recurring"] and p["recurring"]["interval"] == "month"
    )
    return plan


def subscriptions_of(base_url: str, token: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{base_url}/api/v1/billing/subscriptions",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    data: list[dict[str, object]] = response.json()["data"]
    return data


async def test_a_new_user_subscribes_with_4242_then_cancels_at_period_end_in_the_portal(
    offline: OfflineStack, browser: WebDriver
) -> None:
    plan = monthly_plan(offline.url)
    subscription_box = (By.ID, "subscription")

    def subscribe() -> str:
        register(browser, offline.url)
        price = wait(browser).until(
            ec.visibility_of_element_located(
                (By.CSS_SELECTOR, f"#products tr[data-product-id='{plan['id']}'] td.amount")
            )
        )
        assert price.text.endswith("/ month")
        browser.find_element(By.ID, f"subscribe-{plan['id']}").click()
        total = wait(browser).until(ec.visibility_of_element_located((By.ID, "basket-total")))
        assert total.text.endswith("/ month")
        browser.find_element(By.ID, "checkout-button").click()
        wait(browser).until(ec.visibility_of_element_located((By.ID, "sandbox-card-number")))
        pay_with(browser, SUCCEEDING_CARD)
        wait(browser).until(ec.url_contains("session_id=cs_test_"))
        # The return page asks until the subscription's events have made it active.
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(subscription_box, "data-status", "active")
        )
        assert browser.find_element(By.ID, "subscription-plan").text == plan["name"]
        assert browser.find_element(By.ID, "subscription-period-end").text.startswith("Renews on")
        assert browser.find_element(By.ID, "subscription-cancel").is_displayed()
        assert not browser.find_element(By.ID, "subscription-resume").is_displayed()
        wait(browser).until(
            ec.visibility_of_element_located(
                (By.CSS_SELECTOR, f"#entitlements tr[data-product-id='{plan['id']}']")
            )
        )
        screenshot(browser, "subscription-active.png")
        return token_of(browser)

    token = await asyncio.to_thread(subscribe)
    (subscription,) = subscriptions_of(offline.url, token)
    assert (subscription["status"], subscription["cancel_at_period_end"]) == ("active", False)
    sub_id = str(subscription["id"])

    def cancel_in_the_portal() -> None:
        browser.find_element(By.ID, "subscription-portal").click()
        row = wait(browser).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, f"main#portal li#sub-{sub_id}"))
        )
        assert browser.current_url.startswith(offline.sandbox.url + "/sandbox/portal/bps_")
        assert row.get_attribute("data-status") == "active"
        row.find_element(By.CSS_SELECTOR, "button[data-action=cancel]").click()
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(
                (By.ID, f"sub-{sub_id}"), "data-cancel-at-period-end", "true"
            )
        )
        screenshot(browser, "portal-canceled.png")
        browser.find_element(By.ID, "return-link").click()
        wait(browser).until(ec.url_contains("portal=return"))
        # Back in the SPA, which asks until the portal's change has arrived by webhook.
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(
                subscription_box, "data-cancel-at-period-end", "true"
            )
        )
        assert browser.current_url.startswith(offline.url + "/")
        assert browser.find_element(By.ID, "subscription-cancel-note").is_displayed()
        assert browser.find_element(By.ID, "subscription-resume").is_displayed()
        assert not browser.find_element(By.ID, "subscription-cancel").is_displayed()
        assert browser.find_element(By.ID, "subscription-period-end").text.startswith("Ends on")
        assert browser.find_element(By.ID, "subscription").get_attribute("data-status") == "active"
        screenshot(browser, "subscription-cancel-at-period-end.png")

    await asyncio.to_thread(cancel_in_the_portal)

    (after,) = subscriptions_of(offline.url, token)
    assert (after["id"], after["status"], after["cancel_at_period_end"]) == (sub_id, "active", True)
    assert after["current_period_end"] == subscription["current_period_end"]

    def resume_then_cancel_now_in_the_spa() -> None:
        browser.find_element(By.ID, "subscription-resume").click()
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(
                subscription_box, "data-cancel-at-period-end", "false"
            )
        )
        assert browser.find_element(By.ID, "subscription-period-end").text.startswith("Renews on")
        browser.find_element(By.ID, "subscription-cancel-now").click()
        wait(browser).until(ec.alert_is_present()).accept()
        wait(browser).until(
            ec.text_to_be_present_in_element_attribute(subscription_box, "data-status", "canceled")
        )
        wait(browser).until(ec.visibility_of_element_located((By.ID, "no-entitlements")))
        assert not browser.find_element(By.ID, "subscription-cancel-now").is_displayed()
        assert not browser.find_element(By.ID, "subscription-resume").is_displayed()

    await asyncio.to_thread(resume_then_cancel_now_in_the_spa)

    (ended,) = subscriptions_of(offline.url, token)
    assert (ended["id"], ended["status"]) == (sub_id, "canceled")
