"""The daily billing run for a date: renew, send notices, suspend for non-payment, resume, delete."""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing.choices import BillingOutcome
from billing.command_options import iso_date
from billing.cycle import RunInProgress, RunLost, billing_run_finish, billing_run_joinable, billing_run_process, billing_run_start
from billing.cycle_rules import today

# How many failures the command names; the admin's billing run lists them all.
NAMED_AT_MOST = 20


class Command(BaseCommand):
    help = (
        "Renew services from the balance, send expiry notices, suspend unpaid services and delete those suspended for "
        "non-payment long enough, for one calendar date (cron runs it for today)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", type=iso_date, help="the date to run for, YYYY-MM-DD, in TIME_ZONE (default: today)")
        parser.add_argument("--dry-run", action="store_true", help="print and record what would be done; change nothing")
        parser.add_argument(
            "--join", action="store_true", help="share the work of the run for this date another process is doing (PostgreSQL)"
        )

    def handle(self, *args, **options):
        day, dry_run, join = options["date"] or today(), options["dry_run"], options["join"]
        try:
            run = billing_run_joinable(day=day) if join else billing_run_start(day=day, dry_run=dry_run)
        except RunInProgress as error:
            raise CommandError(f"A billing run for {day} is in progress ({error.run.worker}): nothing was done.") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        with tqdm(total=0, unit="service", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:

            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            try:
                unrecorded = billing_run_process(run, joined=join, progress=progress)
            except RunLost as error:
                raise CommandError(f"{error}: it finishes the date.") from None
        if join:
            if unrecorded:
                raise CommandError(f"{unrecorded} service(s) failed and could not be recorded: see the log, and run the date again.")
            self.stdout.write(f"Helped the billing run for {day}; it reports the counts when it finishes.")
            return
        self._report(billing_run_finish(run, unrecorded=unrecorded))

    def _report(self, run):
        items = run.items.select_related("service").order_by("pk")
        if run.dry_run:
            for item in items:
                self.stdout.write(f"would {item.get_action_display().lower()}: service #{item.service_id} {item.message}".rstrip())
        title = f"Billing run for {run.day}{' (dry run: nothing was changed)' if run.dry_run else ''}"
        self.stdout.write(
            f"{title}: renewed {run.renewed}, notified {run.notified}, suspended {run.suspended}, "
            f"resumed {run.resumed}, deleted {run.deleted}, failed {run.failed}."
        )
        if run.failed:
            failures = items.filter(outcome=BillingOutcome.FAILED)[:NAMED_AT_MOST]
            for item in failures:
                self.stderr.write(f"service #{item.service_id}, {item.get_action_display().lower()}: {item.message}")
            if (unrecorded := run.failed - items.filter(outcome=BillingOutcome.FAILED).count()) > 0:
                self.stderr.write(f"{unrecorded} more failed and could not be recorded (their rows were held): see the log")
            raise CommandError(f"{run.failed} step(s) failed, listed in the admin's billing run #{run.pk}. Run the date again to retry.")
