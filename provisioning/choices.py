from django.db import models
from django.utils.translation import gettext_lazy as _


class ModuleKind(models.TextChoices):
    ISPMANAGER5 = "ispmanager5", _("ISPmanager 5")


class PanelEdition(models.TextChoices):
    LITE = "lite", "Lite"
    BUSINESS = "business", "Business"
