"""How SIWE plugs into django-allauth 65 (design choice).

allauth 65 supports custom *social* providers: an installed app ships a ``provider.py`` with
``provider_classes = [...]`` that ``allauth.socialaccount.providers.registry`` imports, each provider
backed by a ``SocialApp`` row (or ``SOCIALACCOUNT_PROVIDERS[...]["APPS"]``) and a ``SocialAccount`` per
user, and the flow ends in ``complete_social_login``. That machinery is built for redirect-based
OAuth/OpenID: it would add ``allauth.socialaccount`` (its tables, its app configuration, its
signup/connect pages) only to hold a ``uid`` we already keep as the username, so it is
disproportionate for a sign-in that is a single JSON round trip.

Instead we integrate at the ``allauth.account`` level: after :func:`services.siwe_message_verify`
succeeds, :func:`siwe_login` hands the user to ``allauth.account.utils.perform_login`` (public API,
``flows.login.perform_login`` underneath). So allauth's login stages, ``pre_login`` (inactive users
are refused), ``user_logged_in`` signal, "Successfully signed in" message and ``next``/
``LOGIN_REDIRECT_URL`` handling all apply exactly as for a password login.

Password login is kept for staff only (``forms.StaffLoginForm``, via ``ACCOUNT_FORMS``); sign-up is
closed (``AccountAdapter.is_open_for_signup``) because wallet sign-in creates accounts on first use.
This module deliberately defines no ``provider_classes``.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.app_settings import EmailVerificationMethod
from allauth.account.utils import perform_login
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Accounts are created by the first wallet sign-in; staff accounts by createsuperuser/admin.
        return False


def siwe_login(request: HttpRequest, *, user: AbstractBaseUser, redirect_url: str | None) -> HttpResponse:
    """Log ``user`` (already SIWE-verified) in through allauth's login flow; returns allauth's response.

    Wallet users have no e-mail address, so e-mail verification does not apply. The caller checks
    ``request.user.is_authenticated`` afterwards: allauth answers an inactive user with a page, not a login.
    """
    return perform_login(
        request,
        user,
        email_verification=EmailVerificationMethod.NONE,
        redirect_url=redirect_url,
    )
