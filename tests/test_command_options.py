"""Management commands refuse negative numbers in their options, with a clear message and before doing anything."""

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError

from billing.command_options import non_negative_int
from billing.models import BillingRun
from ipam_sync.models import SyncRun

PROJECT_APPS = {"billing", "provisioning", "ipam_sync"}
DJANGO_OPTIONS = {action.dest for action in BaseCommand().create_parser("manage.py", "base")._actions}


def project_commands():
    return sorted((app, name) for name, app in get_commands().items() if app in PROJECT_APPS)


NUMBER_TYPES = (int, float, non_negative_int)


def typed_options():
    """(command, option) for every option of the project's commands that reads a number."""
    for app, name in project_commands():
        parser = load_command_class(app, name).create_parser("manage.py", name)
        for action in parser._actions:
            if action.dest not in DJANGO_OPTIONS and action.type in NUMBER_TYPES and action.option_strings:
                yield name, action.option_strings[-1]


def test_the_project_has_commands_with_numeric_options():
    assert ("sync_ips", "--max-release") in list(typed_options())


@pytest.mark.parametrize(("command", "option"), list(typed_options()))
@pytest.mark.parametrize("value", ["-5", "-1"])
def test_every_numeric_option_refuses_a_negative_number(db, command, option, value):
    with pytest.raises(CommandError, match="must be 0 or more"):
        call_command(command, option, value)


def test_sync_ips_with_a_negative_max_release_is_refused_and_runs_nothing(db):
    with pytest.raises(CommandError, match=r"--max-release: must be 0 or more, not -5"):
        call_command("sync_ips", "--max-release", "-5")

    assert SyncRun.objects.count() == 0


def test_sync_ips_refuses_a_negative_max_release_from_the_settings(db, settings):
    settings.SYNC_IPS_MAX_RELEASE = -1

    with pytest.raises(CommandError, match="must be 0 or more"):
        call_command("sync_ips", "--dry-run")


@pytest.mark.parametrize(("value", "parsed"), [("0", 0), ("7", 7)])
def test_sync_ips_accepts_zero_and_positive_limits(value, parsed):
    parser = load_command_class("ipam_sync", "sync_ips").create_parser("manage.py", "sync_ips")

    assert parser.parse_args(["--max-release", value]).max_release == parsed


def test_sync_ips_refuses_a_limit_that_is_not_a_whole_number(db):
    with pytest.raises(CommandError, match=r"'1\.5' is not a whole number"):
        call_command("sync_ips", "--max-release", "1.5")


@pytest.mark.parametrize("value", ["2026-02-30", "tomorrow", "25.02.2026", ""])
def test_billing_daily_refuses_a_date_it_cannot_read_and_records_no_run(db, value):
    with pytest.raises(CommandError, match="is not a date: write it as YYYY-MM-DD"):
        call_command("billing_daily", "--date", value)

    assert not BillingRun.objects.exists()
