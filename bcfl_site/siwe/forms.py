from __future__ import annotations

from allauth.account.forms import LoginForm
from django import forms

STAFF_ONLY_MESSAGE = (
    "Password sign-in is only for staff accounts. Participants and task creators sign in with their wallet."
)


class StaffLoginForm(LoginForm):
    """allauth's login form, refusing correct credentials of non-staff users."""

    def clean(self):
        cleaned_data = super().clean()
        user = getattr(self, "user", None)
        if user is not None and not user.is_staff:
            self.user = None
            raise forms.ValidationError(STAFF_ONLY_MESSAGE, code="staff_only")
        return cleaned_data
