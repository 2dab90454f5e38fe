from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IpamSyncConfig(AppConfig):
    name = "ipam_sync"
    verbose_name = _("IPmanager")
