from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = _("Integration")

    def ready(self):
        from provisioning import signals  # noqa: F401 - connects the receivers
        from provisioning.modules import ispmanager5  # noqa: F401 - registers its backend
