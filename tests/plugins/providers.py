"""Small providers the test plugins build: one blocking, one async.

Plugin files written by the tests import these (``from tests.plugins.providers import
...``) so each plugin stays a few lines long and the contract checks see real
``hypersdk.Provider`` / ``hypersdk.BlockingProvider`` subclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hypersdk
from hypersdk import (
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    PluginMetadata,
    ProviderConfig,
    ProviderType,
    VMFilter,
    VMInfo,
)

if TYPE_CHECKING:
    from hypersdk import ProgressReporter


class FakeBlockingProvider(hypersdk.BlockingProvider):
    """A blocking provider with one VM that says what ``PLUGIN_INFO`` says (by default)."""

    def __init__(
        self,
        config: ProviderConfig,
        info: PluginMetadata,
        *,
        type: str | None = None,
        capabilities: ExportCapabilities | None = None,
    ) -> None:
        self.config = config
        self.info = info
        self._type = ProviderType(type or info.provider_type)
        self._capabilities = capabilities if capabilities is not None else info.capabilities

    @property
    def name(self) -> str:
        return f"{self.info.name} {self.info.version}"

    @property
    def type(self) -> ProviderType:
        return self._type

    def connect(self, config: ProviderConfig) -> None:
        self.config = config

    def disconnect(self) -> None:
        pass

    def validate_credentials(self) -> None:
        pass

    def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        vm = VMInfo(provider=self._type, id="1", name=f"vm-{self.info.version}")
        return [vm] if filter is None or filter.matches(vm) else []

    def get_vm(self, identifier: str) -> VMInfo:
        raise hypersdk.VMNotFoundError(f"no VM {identifier!r}")

    def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        raise hypersdk.UnsupportedFormatError(f"cannot export {options.format}")

    def get_export_capabilities(self) -> ExportCapabilities:
        return self._capabilities


class FakeAsyncProvider(hypersdk.Provider):
    """The async twin of :class:`FakeBlockingProvider`."""

    def __init__(self, config: ProviderConfig, info: PluginMetadata) -> None:
        self.config = config
        self.info = info

    @property
    def name(self) -> str:
        return f"{self.info.name} {self.info.version}"

    @property
    def type(self) -> ProviderType:
        return self.info.provider_type

    async def connect(self, config: ProviderConfig) -> None:
        self.config = config

    async def disconnect(self) -> None:
        pass

    async def validate_credentials(self) -> None:
        pass

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        return [VMInfo(provider=self.type, id="1", name=f"vm-{self.info.version}")]

    async def get_vm(self, identifier: str) -> VMInfo:
        raise hypersdk.VMNotFoundError(f"no VM {identifier!r}")

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        raise hypersdk.UnsupportedFormatError(f"cannot export {options.format}")

    def get_export_capabilities(self) -> ExportCapabilities:
        return self.info.capabilities
