"""Admin pieces every app shares: actions that apply a service function to each selected row, read-only records."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from billing.services import NothingToDo


def bulk_action(name: str, description, apply, done_message, done_detail=None):
    """An admin action named `name` that calls `apply(obj, user)` for each selected row.

    `apply` changes the row, or raises NothingToDo when what was asked for already holds (already
    paid, already confirmed, already requested) or ValidationError when it is refused. Staff read how
    many rows really changed (`done_message` % {"count": n}), then row by row what became of each
    changed one (`done_detail(what apply returned)`, when given), what was already so and why the
    others were refused.
    """

    def run(modeladmin, request, queryset):
        done, details, unchanged, refused = 0, [], [], []
        for obj in queryset:
            try:
                result = apply(obj, request.user)
            except NothingToDo as error:
                unchanged.append(f"{obj}: {' '.join(error.messages)}")
            except ValidationError as error:
                refused.append(f"{obj}: {' '.join(error.messages)}")
            else:
                done += 1
                if done_detail:
                    details.append(f"{obj}: {done_detail(result)}")
        if done:
            modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)
        for text in details:
            modeladmin.message_user(request, text, messages.SUCCESS)
        for text in unchanged:
            modeladmin.message_user(request, text, messages.INFO)
        for text in refused:
            modeladmin.message_user(request, text, messages.ERROR)

    run.__name__ = name
    return admin.action(description=description, permissions=["change"])(run)


class ReadOnlyMixin:
    """For a ModelAdmin or an inline: a record of what happened, looked at, never edited."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
