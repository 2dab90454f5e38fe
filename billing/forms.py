"""Form pieces the admin forms of every app share."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _


class WriteOnlySecretsForm(forms.ModelForm):
    """A model form whose `secret_fields` are never rendered back; left blank they keep the stored value."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            field = self.fields[name]
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            if self.instance.pk and getattr(self.instance, name):
                field.required = False
                field.help_text = _("Stored. Leave blank to keep it, or enter a new one.")

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if not cleaned.get(name) and self.instance.pk:
                # The instance still holds the stored value until the form is applied to it.
                cleaned[name] = getattr(self.instance, name)
        return cleaned

    def get_initial_for_field(self, field, field_name):
        if field_name in self.secret_fields:
            return None
        return super().get_initial_for_field(field, field_name)


class NameListField(forms.CharField):
    """A list of names typed as one line, separated by commas or spaces."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [name for name in re.split(r"[\s,;]+", super().to_python(value) or "") if name]
