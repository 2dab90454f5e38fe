"""A panel's trusted CA is used from memory: no file is written, and no file (planted or not) is trusted."""

import hashlib
import tempfile
from pathlib import Path

import pytest

from ipam_sync.ipmanager.client import IPmanagerClient
from provisioning.coremanager.emulator import EmulatorServer, self_signed_certificate
from provisioning.coremanager.errors import TLSFailed
from provisioning.ispmanager.client import ISPmanagerClient
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.services import module_check_connection
from tests.factories import ProcessingModuleFactory

TIMEOUT = (2, 5)


@pytest.fixture
def tls_panel():
    with EmulatorServer(ISPmanagerEmulator(admins={"root": "secret"}), tls=True) as server:
        yield server


@pytest.fixture
def other_ca():
    """The PEM of a CA that did not sign the panel's certificate.

    Its own name: with the panel's name too, OpenSSL would pick one of the two by name and the tests
    could not tell "trusts only this CA" from "trusts this CA and requests' bundle".
    """
    certificate, _key = self_signed_certificate("Some other CA")
    return certificate


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """The temporary folder every `tempfile` user gets during the test (after the emulator made its certificate)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def files_in(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def client_for(panel, ca_certificate, **kwargs):
    return ISPmanagerClient(panel.url, "root", "secret", verify=True, ca_certificate=ca_certificate, timeout=TIMEOUT, **kwargs)


def test_the_panels_own_ca_connects_and_nothing_is_written(tls_panel, temp_dir):
    assert client_for(tls_panel, tls_panel.certificate).whoami()[0] == "root"

    assert files_in(temp_dir) == []


def test_another_ca_is_refused_with_the_certificate_message_and_nothing_is_written(tls_panel, other_ca, temp_dir):
    with pytest.raises(TLSFailed) as refused:
        client_for(tls_panel, other_ca).whoami()

    assert f"the TLS certificate of 127.0.0.1:{tls_panel.port} could not be verified" in str(refused.value)
    assert "give the panel's CA certificate or switch verification off" in str(refused.value)
    assert files_in(temp_dir) == []


def test_a_file_planted_where_the_ca_used_to_be_written_is_not_trusted(tls_panel, other_ca, temp_dir):
    # Before, the CA went to <tmp>/billing-ca/<sha256 of the PEM>.pem and a file already there was used as it was:
    # another local user could put the attacker's certificate there.
    planted = temp_dir / "billing-ca" / f"{hashlib.sha256(other_ca.encode()).hexdigest()}.pem"
    planted.parent.mkdir()
    planted.write_text(tls_panel.certificate)

    with pytest.raises(TLSFailed):
        client_for(tls_panel, other_ca).whoami()

    assert files_in(temp_dir) == ["billing-ca", f"billing-ca/{planted.name}"]


def test_requests_own_ca_bundle_does_not_join_the_panels_ca(tls_panel, other_ca, tmp_path, monkeypatch):
    # requests turns verify=True into REQUESTS_CA_BUNDLE and would load it into the context next to the panel's CA.
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(tls_panel.certificate)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    with pytest.raises(TLSFailed):
        client_for(tls_panel, other_ca).whoami()
    assert client_for(tls_panel, tls_panel.certificate).whoami()[0] == "root"


def test_the_environments_bundle_is_not_needed_for_the_panels_ca(tls_panel, other_ca, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(other_ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    assert client_for(tls_panel, tls_panel.certificate).whoami()[0] == "root"


def test_a_ca_that_is_not_a_certificate_is_refused_at_the_first_call_without_connecting(tls_panel):
    broken = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n"
    client = client_for(tls_panel, broken)  # building a client never fails: the admin's check reports it

    with pytest.raises(TLSFailed) as refused:
        client.whoami()
    assert f"the trusted CA certificate for 127.0.0.1:{tls_panel.port} cannot be read" in str(refused.value)
    assert tls_panel.app.calls == []


def test_the_ipmanager_client_trusts_its_ca_from_memory_too(ipmanager, temp_dir):
    with EmulatorServer(ipmanager.app, tls=True) as server:
        client = IPmanagerClient(server.url, "billing", "secret", verify=True, ca_certificate=server.certificate, timeout=TIMEOUT)
        assert client.whoami()[0] == "billing"
    assert files_in(temp_dir) == []


@pytest.mark.django_db
def test_a_module_with_its_panels_ca_passes_the_connection_check_and_with_another_ca_is_blocked(tls_panel, other_ca, temp_dir):
    trusted = ProcessingModuleFactory(url=tls_panel.url, username="root", password="secret", ca_certificate=tls_panel.certificate)
    untrusted = ProcessingModuleFactory(url=tls_panel.url, username="root", password="secret", ca_certificate=other_ca)

    assert module_check_connection(module=trusted).ok
    result = module_check_connection(module=untrusted)

    assert (result.ok, result.blocking) == (False, True)
    assert "could not be verified" in str(result.message)
    assert files_in(temp_dir) == []
