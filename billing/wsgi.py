import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: the site must still refuse keys that cannot read the stored secrets.
from billing.checks import refuse_unreadable_keys  # noqa: E402 - needs the apps loaded above

refuse_unreadable_keys()
