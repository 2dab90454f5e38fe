from datetime import timedelta

from django.utils import timezone


def enqueue(task, *args, run_after=None) -> None:
    """Queue `task` now, or for `run_after` where the backend can defer.

    The time is rounded up to the whole second: RQ keeps scheduled times in whole seconds, rounded
    down, and a job started early would find its work not yet due and do nothing.
    """
    if run_after and run_after > timezone.now() and task.get_backend().supports_defer:
        if run_after.microsecond:
            run_after = run_after.replace(microsecond=0) + timedelta(seconds=1)
        task.using(run_after=run_after).enqueue(*args)
    else:
        task.enqueue(*args)
