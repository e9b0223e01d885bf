"""The chapter pages of the built site, in headless Chromium (see test_site.py).

A separate file only so that pytest-xdist runs these pages on the other worker.
"""

import pytest

from tests.site.test_site import (  # noqa: F401
    PAGES_THERE,
    browser,
    check_page,
    context,
    page,
    shared_page,
    site_url,
)


@pytest.mark.parametrize("doc", PAGES_THERE)
def test_chapter_page_loads_cleanly(page, site_url, doc):  # noqa: F811
    check_page(page, site_url, doc)
