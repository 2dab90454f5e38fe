"""Test settings: the project's own, with what a test run needs and nothing from a developer's .env."""

import os

os.environ["ENV_FILE"] = os.devnull  # not the developer's .env (make run writes one with DEBUG=1)
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-that-is-long-enough-0123456789abcdef")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "tests-only-field-key")
# Tasks wait in memory until a test runs them (the `tasks` fixture), so tests control retries.
# TEST_TASKS_BACKEND=rq: they wait in Redis instead (RQ, as with TASKS_BACKEND=django_tasks_rq.RQBackend), in
# TEST_REDIS_URL, a database of their own that each test empties; never REDIS_URL, which may be a live queue.
test_tasks_backends = {"dummy": "django_tasks.backends.dummy.DummyBackend", "rq": "django_tasks_rq.RQBackend"}
test_tasks_backend = os.environ.get("TEST_TASKS_BACKEND") or "dummy"
if test_tasks_backend not in test_tasks_backends:
    raise SystemExit(f"TEST_TASKS_BACKEND={test_tasks_backend!r}: use one of {', '.join(test_tasks_backends)}")
os.environ["TASKS_BACKEND"] = test_tasks_backends[test_tasks_backend]
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

from billing.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Static files are served by the finders in tests; there is no collected folder to look at.
STATIC_ROOT = None
PANEL_TIMEOUT = (2, 5)
# Off here so each test's queued tasks and emails are its own; tests/billing/test_document_mail.py turns it on.
BILLING_EMAIL_DOCUMENTS = False
# Webhook tests send to a receiver on 127.0.0.1; tests/webhooks turn it off to see private addresses refused.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
