"""List filters whose values are checked before they reach the database: a bad value is a 400, never a failed query."""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


class IdFilter(django_filters.NumberFilter):
    """A row's id: a whole number the database can hold (a float or a huge number is a 400, not a failed query)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class AddressFilter(django_filters.CharFilter):
    """An IPv4 or IPv6 address, checked before it reaches the database's address column."""

    field_class = forms.GenericIPAddressField


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, in UTC: PostgreSQL refuses UTC offsets beyond ±15:59 that Python accepts (up to ±23:59)."""

    def clean(self, value):
        value = super().clean(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError(_("This time is out of range."), code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
