"""Who may do what through the API: the token's scopes, then staff or the client's own rows."""

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from billing.api.models import ApiScope, ApiToken
from billing.models import Client
from billing.selectors import client_of

# A browser session acts as its user does on the pages; panel passwords need a token that asks for them.
SESSION_SCOPES = frozenset({ApiScope.READ, ApiScope.WRITE})


def request_scopes(request) -> frozenset:
    token = request.auth
    return frozenset(token.scopes) if isinstance(token, ApiToken) else SESSION_SCOPES


def has_scope(request, scope: str) -> bool:
    return scope in request_scopes(request)


class ScopePermission(BasePermission):
    """Reading needs the read scope; anything else needs write."""

    def has_permission(self, request, view):
        needed = ApiScope.READ if request.method in SAFE_METHODS else ApiScope.WRITE
        if has_scope(request, needed):
            return True
        self.message = _("This token has no “%(scope)s” scope.") % {"scope": needed}
        return False


class StaffOnly(BasePermission):
    message = _("Only staff may use this.")

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_staff)


class StaffMayView(BasePermission):
    """Staff read a viewset's rows with the permission the admin asks to show them: one of `view.staff_view_permissions`."""

    def has_permission(self, request, view):
        if request.method not in SAFE_METHODS or not request.user.is_staff:
            return True
        wanted = view.staff_view_permissions
        if any(request.user.has_perm(permission) for permission in wanted):
            return True
        self.message = _("Your account lacks the permission “%(permission)s”.") % {"permission": wanted[0]}
        return False


def staff_may(request, permission: str) -> bool:
    """A staff user holding the Django permission the admin asks for the same action."""
    return request.user.is_staff and request.user.has_perm(permission)


def acting_client(request) -> Client:
    """The client a client user's request acts for (404 for a user without one)."""
    return client_of(request.user)


def own_rows(request, queryset: QuerySet, field: str = "client") -> QuerySet:
    """Staff see every row; a client user sees only their client's, so anyone else's is a 404."""
    if request.user.is_staff:
        return queryset
    return queryset.filter(**{field: acting_client(request)})
