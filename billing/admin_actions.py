"""Admin actions that apply a service function to each selected row."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError


def bulk_action(name: str, description, apply, done_message):
    """An admin action named `name` that calls `apply(obj, user)` for each selected row.

    It reports how many rows it worked for (`done_message` % {"count": n}) and, row by row, why the
    others were refused.
    """

    def run(modeladmin, request, queryset):
        done = 0
        for obj in queryset:
            try:
                apply(obj, request.user)
                done += 1
            except ValidationError as error:
                modeladmin.message_user(request, f"{obj}: {' '.join(error.messages)}", messages.ERROR)
        if done:
            modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)

    run.__name__ = name
    return admin.action(description=description, permissions=["change"])(run)
