from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self):
        import billing.lookups  # noqa: F401 - registers IntegerIn on every integer field
        from billing.checks import encryption_keys_check, key_check_token_write

        checks.register(encryption_keys_check, checks.Tags.security)
        post_migrate.connect(key_check_token_write, sender=self, dispatch_uid="billing.key_check_token_write")

        from billing.shop_cache import shared_cache_table_create, shop_window_watch

        shop_window_watch()
        post_migrate.connect(shared_cache_table_create, sender=self, dispatch_uid="billing.shared_cache_table_create")

        from billing.deploy_checks import documents_settings_check, test_gateway_check, trusted_proxies_check

        checks.register(test_gateway_check, checks.Tags.security, deploy=True)
        checks.register(trusted_proxies_check, checks.Tags.security)
        checks.register(documents_settings_check)
