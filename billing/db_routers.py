class NoTablesForDjangoRQ:
    """With the Redis queue, django_rq's admin page comes as a model without a table; not migrating it here
    keeps `dumpdata` from reading that table (django-rq issue #631)."""

    def allow_migrate(self, db, app_label, **hints):
        return False if app_label == "django_rq" else None
