"""Who may see and do what on the judges' pages."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse


def staff_only(reason: str):
    """View decorator: anonymous visitors go to the admin login; non-staff users get 403."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            if not (request.user.is_active and request.user.is_staff):
                raise PermissionDenied(reason)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
