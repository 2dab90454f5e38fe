"""Users and groups in the admin, with their permissions named in the reader's language.

Django stores a permission's name in English when it migrates ("Can add ledger entry") and shows that
stored text in every language. The four permissions Django makes for each model are named here from
their action and the model's (translated) name instead; any other permission keeps its stored name.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission
from django.utils.translation import gettext_noop

from billing.stored_text import StoredText

ACTIONS = {
    "add": gettext_noop("Can add %(model)s"),
    "change": gettext_noop("Can change %(model)s"),
    "delete": gettext_noop("Can delete %(model)s"),
    "view": gettext_noop("Can view %(model)s"),
}


def permission_label(permission: Permission) -> str:
    """e.g. "Billing | ledger entry | Can add ledger entry", in the active language."""
    model = permission.content_type.model_class()
    action = permission.codename.split("_", 1)[0]
    if model is None or action not in ACTIONS or permission.codename != f"{action}_{model._meta.model_name}":
        return str(permission)
    name = StoredText(ACTIONS[action], {"model": str(model._meta.verbose_name)})
    return f"{permission.content_type} | {name}"


class TranslatedPermissionsMixin:
    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name in ("permissions", "user_permissions"):
            field.label_from_instance = permission_label
        return field


class TranslatedGroupAdmin(TranslatedPermissionsMixin, GroupAdmin):
    pass


class TranslatedUserAdmin(TranslatedPermissionsMixin, UserAdmin):
    pass


for model, model_admin in ((Group, TranslatedGroupAdmin), (get_user_model(), TranslatedUserAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
