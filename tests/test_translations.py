"""The Russian translation: the admin pages staff use most speak it, and the catalog is complete."""

import ast
import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

LC_MESSAGES = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"
MSGFMT = shutil.which("msgfmt")

# What must survive translation unchanged: %-placeholders, template macros and addresses.
KEEP = re.compile(r"%\(\w+\)[sd]|@[A-Z_]+@|https?://[\w.:/-]+\w|-----BEGIN CERTIFICATE-----")


def url(name, language):
    with translation.override(language):
        return reverse(name)


def po_entries(path):
    """(msgid, msgid_plural, forms, flags) of every live entry of a .po file, the header left out.

    `forms` is [msgstr] for a plain entry and [msgstr[0], msgstr[1], ...] for a plural one; an entry
    with a context has the msgid "CONTEXT\x04MSGID", as gettext stores it.
    """
    entries, entry, field = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if entry and entry["msgid"]:
                forms = [entry[key] for key in sorted(entry) if key.startswith("msgstr")]
                msgid = f"{entry['msgctxt']}\x04{entry['msgid']}" if "msgctxt" in entry else entry["msgid"]
                entries.append((msgid, entry.get("msgid_plural", ""), forms, entry["flags"]))
            entry, field = None, None
            continue
        entry = entry or {"msgid": "", "flags": set()}
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgctxt", "msgid", "msgstr")):
            field, _, literal = line.partition(" ")
            entry[field] = ast.literal_eval(literal)
        elif line.startswith('"') and field:
            entry[field] += ast.literal_eval(line)
        else:
            pytest.fail(f"{path.name}: unexpected line {line!r}")
    return entries


@pytest.mark.django_db
def test_processing_module_add_page_speaks_russian_under_the_ru_prefix(admin_client):
    address = url("admin:provisioning_processingmodule_add", "ru")
    assert address.startswith("/ru/admin/")

    page = admin_client.get(address)

    assert page.status_code == 200
    assert '<html lang="ru"' in page.text
    for label in [
        "Добавить обработчик услуг",
        "Тип продукта",
        "Модуль обработки",
        "Интеграция",
        "Имя пользователя",
        "Пароль",
        "Внутренние параметры",
        "Дата-центр",
        "Отдел",
        "Откуда берутся выделенные IP-адреса",
        "Проверка подключения",
        "Виртуальный хостинг",
        "Внешнее FTP-хранилище",
    ]:
        assert label in page.text, label
    assert "Data center" not in page.text
    assert "Department" not in page.text


@pytest.mark.django_db
def test_processing_module_add_page_stays_english_without_a_prefix(admin_client):
    address = url("admin:provisioning_processingmodule_add", "en")
    assert not address.startswith("/ru/")

    page = admin_client.get(address)

    assert page.status_code == 200
    for label in ["Integration", "Internal", "Data center", "Department", "IPmanager integration", "Shared hosting"]:
        assert label in page.text, label
    assert "Дата-центр" not in page.text
    assert "Интеграция" not in page.text


@pytest.mark.django_db
def test_tariff_plan_add_page_speaks_russian_under_the_ru_prefix(admin_client):
    page = admin_client.get(url("admin:billing_tariffplan_add", "ru"))

    assert page.status_code == 200
    for label in [
        "Добавить тарифный план",
        "Тип продукта",
        "Обработчик услуг",
        "Аккаунт в панели",
        "Шаблон аккаунта",
        "Шаблон имени пользователя",
        "Цена и витрина",
        "Внешнее FTP-хранилище",
    ]:
        assert label in page.text, label
    # The macros and the example stay as they are typed.
    assert "@USERNAME@" in page.text
    assert "user@ID@ для услуги 117 даёт user117" in page.text
    assert "Account template" not in page.text


@pytest.mark.django_db
def test_tariff_plan_add_page_stays_english_without_a_prefix(admin_client):
    page = admin_client.get(url("admin:billing_tariffplan_add", "en"))

    assert page.status_code == 200
    for label in ["Account template", "Username template", "Account in the panel", "Processing module", "Product type"]:
        assert label in page.text, label
    assert "Шаблон аккаунта" not in page.text


@pytest.mark.skipif(MSGFMT is None, reason="needs gettext's msgfmt")
def test_msgfmt_finds_no_untranslated_or_fuzzy_message():
    result = subprocess.run(  # noqa: S603 - gettext's msgfmt on our own catalog
        [MSGFMT, "--check", "--statistics", "-o", "/dev/null", str(PO_FILE)],
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C"},
    )

    assert result.returncode == 0, result.stderr
    assert re.search(r"^\d+ translated messages?\.$", result.stderr.strip().splitlines()[-1]), result.stderr


def test_every_message_is_translated_and_keeps_its_placeholders():
    entries = po_entries(PO_FILE)

    assert len(entries) > 150
    assert [msgid for msgid, _, _, flags in entries if "fuzzy" in flags] == []
    assert [msgid for msgid, _, forms, _ in entries if not all(form.strip() for form in forms)] == []
    for msgid, _, forms, _ in entries:
        for form in forms:
            assert sorted(KEEP.findall(form)) == sorted(KEEP.findall(msgid)), msgid


def test_compiled_catalog_matches_the_po_file():
    with MO_FILE.open("rb") as mo:
        catalog = gettext.GNUTranslations(mo)

    assert "nplurals=4" in catalog.info()["plural-forms"]
    # A difference means django.po changed after compilemessages: compile it again.
    for msgid, plural, forms, _ in po_entries(PO_FILE):
        if plural:
            # 1, 2 and 5 pick the Russian forms 0, 1 and 2.
            assert [catalog.ngettext(msgid, plural, n) for n in (1, 2, 5)] == forms[:3], msgid
        else:
            assert catalog.gettext(msgid) == forms[0], msgid
