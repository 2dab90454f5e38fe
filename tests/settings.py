"""Test settings: the project's own, with what a test run needs and nothing from a developer's .env."""

import os

os.environ["ENV_FILE"] = os.devnull  # not the developer's .env (make run writes one with DEBUG=1)
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-that-is-long-enough-0123456789abcdef")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "tests-only-field-key")
# Tasks wait in memory until a test runs them (the `tasks` fixture), so tests control retries.
os.environ["TASKS_BACKEND"] = "django_tasks.backends.dummy.DummyBackend"

from billing.settings import *  # noqa: F403

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
