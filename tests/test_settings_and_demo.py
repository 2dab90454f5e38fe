import os
import secrets
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from billing.choices import ResourceKind
from billing.models import Client, LedgerEntry, TariffPlan
from billing.selectors import client_balance
from ipam_sync.models import IPmanagerIntegration
from provisioning.models import ProcessingModule

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, **env):
    clean = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}}
    # An empty database: the start-up check must not read a developer's db.sqlite3 encrypted with other keys.
    clean.update(env, DJANGO_SETTINGS_MODULE="billing.settings", DATABASE_URL="sqlite://:memory:")
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def test_production_settings_pass_the_deploy_check_except_what_the_tls_proxy_provides():
    result = _manage("check", "--deploy", SECRET_KEY=secrets.token_urlsafe(50), FIELD_ENCRYPTION_KEYS="prod-key")
    reported = {line.split(")")[0].split("(")[-1] for line in result.stderr.splitlines() if line.startswith("?: (")}
    assert reported == {"security.W004", "security.W008"}, result.stderr  # HSTS and the https redirect


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_its_keys(missing):
    env = {"SECRET_KEY": secrets.token_urlsafe(50), "FIELD_ENCRYPTION_KEYS": "prod-key"}
    del env[missing]
    result = _manage("check", **env)
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


@pytest.mark.django_db
def test_load_demo_builds_the_demo_and_running_it_again_changes_nothing():
    call_command("load_demo", force=True)
    counts = (Client.objects.count(), LedgerEntry.objects.count(), TariffPlan.objects.count(), ProcessingModule.objects.count())
    call_command("load_demo", force=True)

    assert counts == (Client.objects.count(), LedgerEntry.objects.count(), TariffPlan.objects.count(), ProcessingModule.objects.count())
    assert client_balance(client=Client.objects.get()) == Decimal("5000.00")
    assert IPmanagerIntegration.objects.get().url.startswith("http://127.0.0.1:")
    assert set(TariffPlan.objects.values_list("product_type", flat=True)) == {"vhost", "storage"}
    site = TariffPlan.objects.get(name_en="Site hosting")
    assert (site.account_template, site.name_ru) == ("Site hosting", "Хостинг сайтов")
    assert site.resources.get(kind=ResourceKind.DATABASES).included == 10
    assert not site.resources.filter(kind=ResourceKind.WEB_DOMAINS).exists()


@pytest.mark.django_db
def test_load_demo_refuses_to_create_well_known_logins_in_production():
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("load_demo")
    assert not Client.objects.exists()


def test_cron_runs_billing_at_00_30_sync_ips_at_03_15_sync_accounts_at_03_45_and_recovers_operations_and_unsent_emails_every_few_minutes():
    from django.conf import settings
    from django.core.management import get_commands

    commands = [job for job in settings.CRONJOBS if job[1] == "django.core.management.call_command"]
    scheduled = {tuple(args): when for when, function, args in commands}

    assert scheduled == {
        ("sync_ips",): "15 3 * * *",
        ("sync_accounts", "--dry-run"): "45 3 * * *",  # applying only with SYNC_ACCOUNTS_APPLY
        ("recover_operations",): "*/5 * * * *",
        ("billing_daily",): "30 0 * * *",
    }
    others = [job for job in settings.CRONJOBS if job not in commands]
    assert others == [
        ("*/15 * * * *", "billing.notifications.notifications_send_pending"),
        ("*/15 * * * *", "billing.document_mail.documents_email_pending"),
        ("20 * * * *", "billing.api.idempotency.idempotency_keys_purge"),
    ]
    assert {"sync_ips", "sync_accounts", "recover_operations", "billing_daily"} <= set(get_commands())
