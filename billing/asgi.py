import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
application = get_asgi_application()

# ASGI servers run no system checks: the site must still refuse keys that cannot read the stored secrets.
from billing.checks import refuse_unreadable_keys  # noqa: E402 - needs the apps loaded above

refuse_unreadable_keys()
