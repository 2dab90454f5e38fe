"""Admin actions that apply a service function to each selected row."""

from django.contrib import messages
from django.core.exceptions import ValidationError


def apply_each(modeladmin, request, queryset, service, done_message) -> None:
    """Call `service(obj)` for each selected row; report how many worked and why the others did not."""
    done = 0
    for obj in queryset:
        try:
            service(obj)
            done += 1
        except ValidationError as error:
            modeladmin.message_user(request, f"{obj}: {' '.join(error.messages)}", messages.ERROR)
    if done:
        modeladmin.message_user(request, done_message % {"count": done}, messages.SUCCESS)
