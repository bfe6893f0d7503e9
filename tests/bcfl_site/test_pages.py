"""Site-wide page behaviour: why the login page asks you to sign in, the favicon."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db

SKIP_PREFIXES = ("admin/", "api/")  # the admin has its own login; APIs answer 401/403, not a login page


def _concrete_paths(patterns, prefix=""):
    """(path, view) for every URL of the project, with path converters filled with sample values."""
    for p in patterns:
        route = prefix + str(p.pattern)
        if route.startswith(SKIP_PREFIXES) or route.startswith("^"):
            continue
        if isinstance(p, URLResolver):
            yield from _concrete_paths(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            path = re.sub(r"<int:\w+>", "1", route)
            path = re.sub(r"<(?:str|slug):\w+>", "x", path)
            if "<" not in path:
                yield "/" + path, p.callback


def _login_redirects(client):
    login = reverse(settings.LOGIN_URL)
    for path, view in _concrete_paths(get_resolver().url_patterns):
        resp = client.get(path)
        # a redirect with `next` is a page that needs a signed-in user (without it: allauth's own flow steps)
        if resp.status_code == 302 and resp["Location"].startswith(login + "?next="):
            yield path, view, resp["Location"]


def test_login_page_says_why_for_task_creation(client):
    # given: a signed-out visitor opens the task form
    resp = client.get(reverse("tasks:create"))
    assert resp.status_code == 302
    # when: they land on the login page
    page = client.get(resp["Location"])
    # then: it says why they must sign in
    assert page.status_code == 200
    assert "Sign in with your wallet to create a task." in page.content.decode()


def test_every_login_required_page_gives_its_reason(client):
    # given: every page of the project, visited signed out
    found = list(_login_redirects(client))
    # then: there are some, and every one of them explains itself on the login page
    paths = {path for path, _, _ in found}
    assert {reverse("tasks:create"), reverse("tasks:identity"), reverse("tasks:register", args=[1])} <= paths
    for path, view, location in found:
        body = client.get(location).content.decode()
        assert "Sign in with your wallet to " in body, path
        if view.__module__.startswith(("tasks.", "training.", "marketplace.", "bcfl_site.")):
            # our own pages name their reason (tasks.decorators.login_required_to), not just the path
            assert getattr(view, "login_reason", None), f"{path} needs login_required_to(reason)"
            assert f"Sign in with your wallet to {view.login_reason}." in body, path


def test_login_page_without_next_or_with_foreign_next_gives_no_reason(client):
    login = reverse(settings.LOGIN_URL)
    assert "Sign in with your wallet to " not in client.get(login).content.decode()
    body = client.get(login, {"next": "https://evil.example/tasks/new/"}).content.decode()
    assert "Sign in with your wallet to " not in body
    body = client.get(login, {"next": "/no/such/page/"}).content.decode()
    assert "Sign in with your wallet to " not in body


def test_favicon_is_served_and_linked(client):
    # when
    resp = client.get("/favicon.ico")
    # then: an icon (ICO header: reserved 0, type 1)
    assert resp.status_code == 200 and resp["Content-Type"] == "image/x-icon"
    assert resp.content[:4] == b"\x00\x00\x01\x00"
    # and every page built on the base template links it from the static files
    home = client.get(reverse("tasks:list")).content.decode()
    assert '<link rel="icon" href="/static/favicon.ico"' in home
