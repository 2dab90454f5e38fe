"""What every processing module can do; one class per `ProcessingModule.kind`.

Modules talk to their panel and raise `TransientError` / `PermanentError`; they never change
billing state: the operation runner does, once the panel has confirmed.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from provisioning.coremanager.check import CheckResult


@dataclass
class PanelAccount:
    exists: bool
    active: bool = False
    limits: dict = field(default_factory=dict)


class ModuleBackend(ABC):
    def __init__(self, module):
        self.module = module

    @abstractmethod
    def check_connection(self) -> CheckResult: ...

    @abstractmethod
    def open(self, service, *, password: str) -> str:
        """Create the service's account (or adopt the one an earlier attempt created); return its login."""

    @abstractmethod
    def assign_ips(self, service, *, login: str, addresses: list[str]) -> None:
        """Give the account its dedicated addresses (already allocated from IPmanager)."""

    @abstractmethod
    def unassign_ips(self, service, addresses: list[str]) -> None:
        """Take the service's dedicated addresses off the panel before they go back to IPmanager; one already gone counts as done."""

    @abstractmethod
    def suspend(self, service) -> None: ...

    @abstractmethod
    def resume(self, service) -> None: ...

    @abstractmethod
    def close(self, service) -> None:
        """Delete the account; an account that is already gone counts as deleted."""

    @abstractmethod
    def set_limits(self, service) -> None: ...

    @abstractmethod
    def change_password(self, service, *, password: str) -> None: ...

    @abstractmethod
    def sync(self, service) -> PanelAccount:
        """The account as the panel has it: whether it exists, is active, and its limits."""

    @abstractmethod
    def login_url(self, service) -> str:
        """An address that logs a browser in to the service's account once, without its password; used at once, never kept."""


# ProcessingModule.kind -> its backend class, filled by `register` when the backends' modules are imported (apps.ready).
BACKENDS: dict[str, type[ModuleBackend]] = {}


def register(kind: str):
    """Class decorator: the backend of processing modules of `kind`."""

    def add(backend: type[ModuleBackend]) -> type[ModuleBackend]:
        BACKENDS[kind] = backend
        return backend

    return add
