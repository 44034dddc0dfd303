"""The reference inbox in a real headless Chromium against a real `serve` and a real worker.

What a person does: signs in on the development page, sees invoices and "Load more", loads
more, receives a document posted to the API without reloading, opens it (it turns read here
and in a second tab), sees it turn paid when its sender says so, and is sent back to sign-in,
with a message, when the token is no good.
The second demo user never sees the first one's documents.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app_fixtures import LiveServer, invoice_metadata, post_document, sample_pdf, unique
from e2e.portal_browser import Browser
from mailbox_devtools.demo.seed import DemoSeed
from mailbox_fixtures import bearer, portal_token
from mailbox_service.auth import mint_token
from mailbox_service.portal.demo_users import ALICE, BOB, DEMO_USERS
from mailbox_service.settings import Settings
from notify_fixtures import WorkerProcess

pytestmark = pytest.mark.e2e

T = TypeVar("T")
ALICE_USER, BOB_USER = DEMO_USERS
LIVE_TIMEOUT_S = 20.0

ITEMS_JS = """
return [...document.querySelectorAll('#items > li')].map(li => ({
  id: li.dataset.id, type: li.dataset.type, account: li.dataset.account,
  read: li.dataset.read, title: li.dataset.title,
  text: li.innerText,
}));
"""


def wait(browser: Browser, what: str, condition: Callable[[Any], T], timeout: float = 10) -> T:
    """Poll `condition(driver)` until it is truthy; fail naming `what` and the page state."""
    try:
        return WebDriverWait(browser.driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        errors = browser.console_errors()
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; at {browser.driver.current_url}; "
            f"console errors: {errors}"
        ) from None


def items(browser: Browser) -> list[dict[str, str]]:
    return browser.driver.execute_script(ITEMS_JS)  # type: ignore[no-any-return]


def badge(browser: Browser) -> int:
    return int(browser.driver.find_element(By.ID, "unread-badge").text)


def text_of(browser: Browser, element_id: str) -> str:
    return str(browser.driver.find_element(By.ID, element_id).text)


def sign_in(browser: Browser, sub: str) -> None:
    """Sign in on the development page as a person would: pick the user, press the button."""
    browser.open("/portal/sign-in")
    browser.driver.find_element(By.ID, f"user-{sub}").click()
    browser.driver.find_element(By.ID, "sign-in-submit").click()
    wait_for_inbox(browser)


def wait_for_inbox(browser: Browser) -> None:
    wait(
        browser,
        "the first page of documents",
        lambda d: d.execute_script(
            "return document.getElementById('items')?.getAttribute('aria-busy') === 'false'"
            " && document.querySelectorAll('#items > li').length > 0"
        ),
    )
    wait(
        browser,
        "live updates to connect",
        lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "on",
    )


def wait_for_item(browser: Browser, document_id: str, timeout: float = LIVE_TIMEOUT_S) -> None:
    wait(
        browser,
        f"document {document_id} to appear live",
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#items > li[data-id="{document_id}"]'),
        timeout,
    )


def read_state(browser: Browser, document_id: str) -> str | None:
    found = browser.driver.find_elements(By.CSS_SELECTOR, f'#items > li[data-id="{document_id}"]')
    return found[0].get_attribute("data-read") if found else None


def status_of(browser: Browser, document_id: str) -> str | None:
    found = browser.driver.find_elements(By.CSS_SELECTOR, f'#items > li[data-id="{document_id}"]')
    return found[0].get_attribute("data-status") if found else None


async def post_invoice(server: LiveServer, key: str, account_id: str, **overrides: Any) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await post_document(http, key, invoice_metadata(account_id, **overrides))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_inbox_lists_loads_more_and_updates_live_across_tabs(
    browser: Browser,
    portal_server: LiveServer,
    portal_worker: WorkerProcess,
    demo: DemoSeed,
    ingest_key: str,
    settings: Settings,
) -> None:
    driver = browser.driver
    browser.viewport(1280, 900)

    # Without a token the inbox sends us to sign in instead of showing an empty page.
    browser.open("/portal/")
    wait(browser, "the sign-in page", lambda d: "/portal/sign-in" in d.current_url)
    sign_in(browser, ALICE_USER.sub)
    assert ALICE_USER.name in text_of(browser, "who-name")

    first_page = items(browser)
    invoices = [item for item in first_page if item["type"] == "invoice"]
    assert len(invoices) >= 3, first_page
    assert all("€" in item["text"] and "due" in item["text"] for item in invoices[:3])
    assert {item["account"] for item in first_page} <= set(ALICE_USER.accounts)
    load_more = driver.find_element(By.ID, "load-more")
    assert load_more.is_displayed()
    assert load_more.text == "Load more"
    browser.screenshot("portal-inbox.png")

    load_more.click()
    wait(browser, "the second page", lambda d: len(items(browser)) > len(first_page))
    both_pages = items(browser)
    ids = [item["id"] for item in both_pages]
    assert len(ids) == len(set(ids)), "Load more repeated a document"
    assert ids[: len(first_page)] == [item["id"] for item in first_page]
    assert {item["account"] for item in both_pages} <= set(ALICE_USER.accounts)

    # A second tab of the same browser shares the sign-in.
    first_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    browser.open("/portal/")
    wait_for_inbox(browser)
    second_tab = driver.current_window_handle
    driver.switch_to.window(first_tab)
    unread_before = badge(browser)

    number = unique("INV")
    new_id = await post_invoice(
        portal_server,
        ingest_key,
        ALICE.account_id,
        attributes={
            "invoice_number": number,
            "total_amount": "1234.50",
            "currency": "EUR",
            "due_date": "2026-12-15",
        },
    )
    wait_for_item(browser, new_id)
    newest = items(browser)[0]
    assert newest["id"] == new_id, "the new document is not at the top"
    assert newest["read"] == "false"
    assert "€1,234.50" in newest["text"]
    assert "Dec 15, 2026" in newest["text"]
    wait(
        browser,
        "the badge to count the new document",
        lambda d: badge(browser) == unread_before + 1,
    )
    wait(browser, "the announcement", lambda d: number in text_of(browser, "announcer"))

    driver.switch_to.window(second_tab)
    wait_for_item(browser, new_id)
    assert read_state(browser, new_id) == "false"

    # Opening it in the first tab reads it: here, in the other tab, and in the API.
    driver.switch_to.window(first_tab)
    driver.find_element(By.CSS_SELECTOR, f'#items > li[data-id="{new_id}"] .item__open').click()
    download = wait(
        browser,
        "the PDF to be ready",
        lambda d: (link := d.find_element(By.ID, "detail-download")).is_displayed() and link,
    )
    assert download.get_attribute("href").startswith("blob:")
    assert int(download.get_attribute("data-bytes")) == len(sample_pdf())
    assert number in text_of(browser, "detail-title")
    assert read_state(browser, new_id) == "true"
    wait(browser, "the badge to drop", lambda d: badge(browser) == unread_before)
    browser.screenshot("portal-opened.png")
    driver.find_element(By.ID, "detail-close").click()

    driver.switch_to.window(second_tab)
    wait(browser, "the other tab to show it read", lambda d: read_state(browser, new_id) == "true")
    wait(browser, "the other tab's badge", lambda d: badge(browser) == unread_before)

    # The sender marks it paid: the open inbox shows it at once, without reloading.
    assert status_of(browser, new_id) == "open"
    async with httpx.AsyncClient(base_url=portal_server.url) as http:
        paid = await http.patch(
            f"/v1/documents/{new_id}",
            json={"status": "paid", "status_at": "2026-11-20T09:00:00Z"},
            headers=bearer(ingest_key),
        )
    assert paid.json()["outcome"] == "changed", paid.text
    wait(browser, "the inbox to show it paid", lambda d: status_of(browser, new_id) == "paid")
    item = driver.find_element(By.CSS_SELECTOR, f'#items > li[data-id="{new_id}"]')
    assert "Paid" in item.text

    token = portal_token(settings, *ALICE_USER.accounts, sub=ALICE_USER.sub)
    async with httpx.AsyncClient(base_url=portal_server.url) as http:
        stored = (await http.get(f"/v1/mailbox/documents/{new_id}", headers=bearer(token))).json()
    assert stored["read_at"] is not None
    assert stored["first_downloaded_at"] is not None
    assert browser.console_errors() == []


async def test_the_other_user_never_sees_alices_documents(
    browser: Browser,
    portal_server: LiveServer,
    portal_worker: WorkerProcess,
    demo: DemoSeed,
    ingest_key: str,
) -> None:
    alice_only = await post_invoice(portal_server, ingest_key, ALICE.account_id)
    driver = browser.driver
    sign_in(browser, ALICE_USER.sub)
    assert alice_only in {item["id"] for item in items(browser)}
    first_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    browser.open("/portal/")
    wait_for_inbox(browser)
    other_tab = driver.current_window_handle

    # Bob signs in on the same browser: the tab still showing Alice's inbox follows.
    driver.switch_to.window(first_tab)
    sign_in(browser, BOB_USER.sub)
    assert BOB_USER.name in text_of(browser, "who-name")
    driver.switch_to.window(other_tab)
    wait(
        browser,
        "the other tab to follow the new sign-in",
        lambda d: BOB_USER.name in text_of(browser, "who-name"),
    )
    wait_for_inbox(browser)
    assert {item["account"] for item in items(browser)} <= set(BOB_USER.accounts)
    driver.close()
    driver.switch_to.window(first_tab)

    shown = items(browser)
    assert {item["account"] for item in shown} <= set(BOB_USER.accounts)
    assert alice_only not in {item["id"] for item in shown}

    # Live: Bob's own document arrives, Alice's (posted first) never does.
    await post_invoice(portal_server, ingest_key, ALICE.account_id)
    bobs = await post_invoice(portal_server, ingest_key, BOB.account_id)
    wait_for_item(browser, bobs)
    await asyncio.sleep(1.0)  # give a wrongly routed event the chance to show up
    assert {item["account"] for item in items(browser)} <= set(BOB_USER.accounts)

    # A link to Alice's document (as in her notification email) shows "not found" to Bob.
    browser.open(f"/portal/documents/{alice_only}")
    wait(
        browser,
        "the not-found message",
        lambda d: "not in your mailbox" in text_of(browser, "detail-status"),
    )
    assert read_state(browser, alice_only) is None


def test_an_expired_token_goes_back_to_sign_in_with_a_message(
    browser: Browser, settings: Settings
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    expired = mint_token(settings.auth, ALICE_USER.sub, ALICE_USER.accounts, ttl_s=60, now=long_ago)
    browser.open("/portal/sign-in")
    browser.driver.execute_script(
        "localStorage.setItem('mailbox-portal.token', arguments[0])", expired
    )
    browser.open("/portal/")
    wait(browser, "the sign-in page", lambda d: "/portal/sign-in" in d.current_url)
    assert "reason=expired" in browser.driver.current_url
    assert "Your session has expired" in text_of(browser, "sign-in-notice")
    assert browser.driver.find_element(By.ID, "sign-in-submit").is_displayed()
    stored = browser.driver.execute_script("return localStorage.getItem('mailbox-portal.token')")
    assert stored is None, "the expired token was kept"


def test_a_token_the_api_refuses_goes_back_to_sign_in(browser: Browser, settings: Settings) -> None:
    # Well-formed and unexpired, so only the server can tell: its signature is wrong.
    forged = portal_token(settings, *ALICE_USER.accounts, sub=ALICE_USER.sub)[:-4] + "AAAA"
    browser.open("/portal/sign-in")
    browser.driver.execute_script(
        "localStorage.setItem('mailbox-portal.token', arguments[0])", forged
    )
    browser.open("/portal/")
    wait(browser, "the sign-in page", lambda d: "reason=invalid" in d.current_url)
    assert "no longer accepted" in text_of(browser, "sign-in-notice")


def test_readable_at_phone_width(browser: Browser) -> None:
    browser.viewport(320, 640)  # the narrowest phones still in use
    sign_in(browser, ALICE_USER.sub)
    overflow = browser.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0, "the page scrolls sideways at phone width"
    # The tabs are reachable by keyboard: arrow keys move the selection.
    tab = browser.driver.find_element(By.ID, "tab-all")
    tab.click()
    tab.send_keys("\ue014")  # ArrowRight
    wait(
        browser,
        "the Unread tab",
        lambda d: d.find_element(By.ID, "tab-unread").get_attribute("aria-selected") == "true",
    )
    wait(
        browser,
        "the unread list",
        lambda d: all(item["read"] == "false" for item in items(browser)) and items(browser),
    )
    browser.screenshot("portal-phone.png")
