"""Every page of the built site on a phone (390 px) and a tablet (800 px), in headless Chromium.

No page may be wider than the screen (a reader must never scroll sideways: wide code and
outputs scroll inside their own block), and the menu button must open the navigation drawer
(see book/_static/menu.js for why it did not).
"""

from __future__ import annotations

import pytest

from tests.site.test_site import (  # noqa: F401
    PAGES,
    browser,
    site_url,
)

_OVERFLOW_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const culprits = [];
  for (const element of document.querySelectorAll('article *')) {
    const box = element.getBoundingClientRect();
    if (box.right <= width + 0.5 || element.offsetParent === null) continue;
    let ancestor = element.parentElement, clipped = false;
    while (ancestor) {
      if (getComputedStyle(ancestor).overflowX !== 'visible') { clipped = true; break; }
      ancestor = ancestor.parentElement;
    }
    if (!clipped) culprits.push(`${element.tagName} "${element.textContent.slice(0, 50)}"`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, culprits: culprits.slice(0, 5)};
}
"""


@pytest.fixture(scope="module")
def phone(browser):  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.mark.parametrize("doc", PAGES)
def test_page_fits_a_phone(phone, site_url, doc):  # noqa: F811
    phone.goto(f"{site_url}/{doc}.html", wait_until="load")
    measured = phone.evaluate(_OVERFLOW_JS)
    assert measured["scrollWidth"] <= measured["width"], (
        f"{doc} is {measured['scrollWidth']} px wide on a {measured['width']} px screen: "
        f"{measured['culprits']}")


@pytest.mark.parametrize("width", [390, 800])
def test_menu_button_opens_the_navigation(browser, site_url, width):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": 844})
    try:
        page = context.new_page()
        page.goto(f"{site_url}/notebooks/02-the-hub.html", wait_until="load")
        visible = [button for button in page.locator(".primary-toggle").all()
                   if button.is_visible()]
        assert visible, "no visible menu button"
        visible[0].click()
        page.wait_for_function(
            "() => document.querySelector('#pst-primary-sidebar-modal')?.open === true",
            timeout=5_000)
        links = page.locator("#pst-primary-sidebar-modal a.reference").all()
        assert any(link.is_visible() for link in links), "the drawer shows no chapter link"
    finally:
        context.close()
