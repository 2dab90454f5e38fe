"""`make run` as a newcomer meets it: the .env it writes, and what load_demo tells them.

The Makefile's own rule is run (make in a temporary folder holding a copy of the Makefile), and
manage.py is run with the file that rule wrote, as the README's commands run after `make run`.
"""

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from billing.choices import LedgerEntryKind
from billing.models import Client
from billing.services import ledger_entry_add

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def folder(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    return tmp_path


def make(folder: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", *targets], cwd=folder, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603, S607


def manage(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    """manage.py as typed by hand: no DEBUG, keys or settings in the environment, only ENV_FILE."""
    unset = {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE", "ENV_FILE"}
    env = {key: value for key, value in os.environ.items() if key not in unset} | {"ENV_FILE": str(env_file)}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_make_writes_a_development_env_when_there_is_none_and_says_so(folder):
    result = make(folder, ".env")

    assert result.returncode == 0, result.stderr
    assert "Wrote .env with DEBUG=1 (development mode)" in result.stdout
    lines = (folder / ".env").read_text().splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == ["DEBUG=1"]


def test_make_never_overwrites_an_existing_env(folder):
    (folder / ".env").write_text("DEBUG=0\nSECRET_KEY=mine\n")

    result = make(folder, ".env")

    assert result.returncode == 0, result.stderr
    assert "Wrote" not in result.stdout
    assert (folder / ".env").read_text() == "DEBUG=0\nSECRET_KEY=mine\n"


def test_make_run_writes_the_env_before_anything_else_and_starts_the_emulators_with_their_state_files(folder):
    (folder / "requirements.txt").write_text("")

    planned = make(folder, "-n", "run").stdout.splitlines()

    assert "DEBUG=1" in planned[0]  # the .env rule comes first
    emulators = [line for line in planned if "emulator --port" in line]
    assert len(emulators) == 2
    assert "--state var/ispmanager-demo.json" in emulators[0]
    assert "--state var/ipmanager-demo.json" in emulators[1]
    assert any("var/ispmanager-demo.json and var/ipmanager-demo.json" in line for line in planned)


def test_with_the_written_env_manage_py_commands_work_without_debug_in_the_environment(folder):
    make(folder, ".env")

    assert manage("check", env_file=folder / ".env").returncode == 0
    refused = manage("check", env_file=folder / "missing.env")
    assert refused.returncode != 0
    assert "Set the SECRET_KEY environment variable" in refused.stderr


@pytest.mark.django_db
def test_load_demo_prints_the_clients_real_balance():
    call_command("load_demo", force=True, stdout=StringIO())
    client = Client.objects.get()
    ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("1234.50"), reference="order")

    out = StringIO()
    call_command("load_demo", force=True, stdout=out)

    assert "login client@example.com / client (balance 3765.50 RUB)" in out.getvalue()
