"""View decorators shared by the server-rendered pages."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required


def login_required_to(reason: str) -> Callable:
    """`login_required` that also tells the login page why signing in is needed.

    `reason` completes "Sign in with your wallet to …" (e.g. "create a task"); it is stored as the view's
    `login_reason` attribute, which the login page reads from the view its `next` URL resolves to
    (`bcfl_site.templatetags.bcfl_pages.login_reason`).
    """

    def decorate(view: Callable) -> Callable:
        wrapped = login_required(view)
        wrapped.login_reason = reason
        return wrapped

    return decorate
