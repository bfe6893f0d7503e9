"""The site's real WSGI application for in-process API tests (schemathesis ``from_wsgi``).

Django's handler closes the database connection when a request finishes (``close_old_connections``);
inside a pytest-django test that connection holds the test's transaction, so, like Django's own test
client, the signals are detached for the duration of each request. Nothing else differs from
production: CSRF is enforced, middleware and the DRF settings are the real ones.
"""

from __future__ import annotations

from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from bcfl_site.wsgi import application


def wsgi_app(environ, start_response):
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        body = b"".join(result)
        result.close()  # sends request_finished, as a WSGI server would
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return [body]
