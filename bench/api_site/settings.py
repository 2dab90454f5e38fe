"""bench/api.py's settings: the project's own, with one extra URL, /bench/bare-api, to compare against."""

from billing.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_site.urls"
