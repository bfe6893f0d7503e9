from tests.e2e.browser import chromium_page  # noqa: F401 - fixture shared by the browser tests
