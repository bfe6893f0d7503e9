"""Template helpers for the site's pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import template
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme

register = template.Library()


@register.simple_tag
def login_reason(next_url: str | None) -> str:
    """Why the page at `next_url` needs a signed-in wallet, completing "Sign in with your wallet to …".

    The reason is the `login_reason` of the view `next_url` resolves to (set by
    `tasks.decorators.login_required_to`); a page that gives none gets "open <path>". Returns "" without a
    `next_url`, or when it is not a relative URL of one of this site's pages (it is never echoed then).
    """
    if not next_url or not url_has_allowed_host_and_scheme(next_url, allowed_hosts=None):
        return ""
    path = urlsplit(next_url).path
    try:
        match = resolve(path)
    except Resolver404:
        return ""
    return getattr(match.func, "login_reason", None) or f"open {path}"
