"""bench/shop.py's settings: the project's own, with one extra URL, /bench/bare/, to compare against."""

from billing.settings import *  # noqa: F403

ROOT_URLCONF = "bench.shop_site.urls"
