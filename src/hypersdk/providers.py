"""The provider interface: :class:`Provider` (async) and :class:`BlockingProvider` (sync).

A plugin implements one of the two. Applications only ever see :class:`Provider`:
the registry wraps a :class:`BlockingProvider` with :func:`as_async_provider`, which runs
each call in a worker thread (through anyio, with a capacity limit) so a blocking vendor
SDK never stalls the event loop.

Go's ``context.Context`` becomes anyio cancellation and deadlines: cancel the calling
task or put it under ``anyio.fail_after(...)`` and the provider stops. Blocking code
sees the same through :func:`check_cancelled` and :func:`time_remaining`.
"""

from __future__ import annotations

import abc
import contextvars
import math
import threading
import time
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

import attrs

from hypersdk.models import (
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    ProviderConfig,
    ProviderType,
    VMFilter,
    VMInfo,
    search_matches,
)

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    import anyio

    from hypersdk.progress import ProgressReporter

__all__ = [
    "Provider",
    "BlockingProvider",
    "as_async_provider",
    "check_cancelled",
    "time_remaining",
    "DEFAULT_WORKER_LIMIT",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Provider(abc.ABC):
    """An async VM/cloud provider.

    Lifecycle: construct (usually through ``Registry.create``), ``await connect(config)``,
    use, ``await disconnect()``. ``async with provider:`` disconnects on exit, even when
    the block is cancelled. Every method other than the properties and
    :meth:`get_export_capabilities` raises :class:`~hypersdk.NotConnectedError` before
    ``connect`` and after ``disconnect``.

    Methods raise only :class:`~hypersdk.HyperSDKError` subclasses: never a raw HTTP,
    JSON, ``KeyError`` or ``TypeError``.
    """

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A human-readable, non-empty name such as ``"DigitalOcean"``."""

    @property
    @abc.abstractmethod
    def type(self) -> ProviderType:
        """The provider type this provider registers under (its ``PLUGIN_INFO.provider_type``)."""

    @abc.abstractmethod
    async def connect(self, config: ProviderConfig) -> None:
        """Open the session and check the credentials.

        Raises:
            ConfigurationError: a required setting is missing or invalid (no request made).
            AuthenticationError: the credentials were rejected.
            ProviderUnavailableError: the API could not be reached.
        """

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close the session and release its resources. Idempotent; never raises."""

    @abc.abstractmethod
    async def validate_credentials(self) -> None:
        """Check that the credentials are still accepted.

        Raises:
            AuthenticationError: they are not.
        """

    @abc.abstractmethod
    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        """Return every VM (across all pages) that ``filter`` matches.

        The result equals ``[vm for vm in all_vms if filter.matches(vm)]`` in the API's
        order, whatever the provider pushes to the server. ``None`` means every VM.
        """

    @abc.abstractmethod
    async def get_vm(self, identifier: str) -> VMInfo:
        """Return the VM with this id.

        Raises:
            VMNotFoundError: there is none (never returns ``None``).
        """

    async def search_vms(self, query: str) -> list[VMInfo]:
        """Return the VMs that :func:`~hypersdk.search_matches` accepts for ``query``.

        The default lists every VM and filters locally; override it only to push the
        search to the server, keeping the same result.
        """
        return [vm for vm in await self.list_vms() if search_matches(vm, query)]

    @abc.abstractmethod
    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        """Export a VM into ``options.output_path``.

        Progress goes to ``progress`` with monotonically non-decreasing percent ending at
        100. On failure or cancellation no partial file is left behind.

        Raises:
            UnsupportedFormatError: the format is not in the capabilities (checked first,
                before any change on the provider or on disk).
            VMNotFoundError: no such VM.
            ExportError: the export failed.
        """

    @abc.abstractmethod
    def get_export_capabilities(self) -> ExportCapabilities:
        """Return what this provider can export (no I/O; callable before ``connect``)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        import anyio

        # Shielded so a cancelled block still closes its HTTP client.
        with anyio.CancelScope(shield=True):
            await self.disconnect()


class BlockingProvider(abc.ABC):
    """A provider written as plain blocking functions, for vendor SDKs that block.

    Same contract as :class:`Provider`, with ``def`` instead of ``async def``. hypersdk
    runs each call in a worker thread; inside, call :func:`check_cancelled` in long loops
    and :func:`time_remaining` to size timeouts, so cancellation and deadlines of the
    calling task are honoured.
    """

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """A human-readable, non-empty name."""

    @property
    @abc.abstractmethod
    def type(self) -> ProviderType:
        """The provider type this provider registers under."""

    @abc.abstractmethod
    def connect(self, config: ProviderConfig) -> None:
        """See :meth:`Provider.connect`."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """See :meth:`Provider.disconnect`."""

    @abc.abstractmethod
    def validate_credentials(self) -> None:
        """See :meth:`Provider.validate_credentials`."""

    @abc.abstractmethod
    def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        """See :meth:`Provider.list_vms`."""

    @abc.abstractmethod
    def get_vm(self, identifier: str) -> VMInfo:
        """See :meth:`Provider.get_vm`."""

    def search_vms(self, query: str) -> list[VMInfo]:
        """See :meth:`Provider.search_vms`."""
        return [vm for vm in self.list_vms() if search_matches(vm, query)]

    @abc.abstractmethod
    def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        """See :meth:`Provider.export_vm`."""

    @abc.abstractmethod
    def get_export_capabilities(self) -> ExportCapabilities:
        """See :meth:`Provider.get_export_capabilities`."""


DEFAULT_WORKER_LIMIT: Final = 4
_MAX_WORKERS: Final = 1024  # more threads than this is a mistake, not a configuration
"""How many calls of one blocking provider may run in worker threads at once."""


@attrs.frozen
class _WorkerContext:
    """Set while a worker thread runs a blocking provider's method for an async caller."""

    deadline: float | None  # absolute time.monotonic() value, None when there is none


_worker: contextvars.ContextVar[_WorkerContext | None] = contextvars.ContextVar(
    "hypersdk_worker", default=None
)


def check_cancelled() -> None:
    """Raise the caller's cancellation inside a :class:`BlockingProvider` method.

    Call it between steps of long blocking work (each page, each chunk written). When the
    async task that made the call was cancelled or its deadline passed, this raises the
    async library's cancellation exception, which unwinds your method like any exception;
    clean up in ``finally`` blocks. Outside a hypersdk worker thread it does nothing.
    """
    if _worker.get() is None:
        return
    from anyio import from_thread

    from_thread.check_cancelled()


def time_remaining() -> float | None:
    """Seconds left before the async caller's deadline, or ``None`` when there is none.

    Use it to size a blocking client's timeout. Never negative. Outside a hypersdk worker
    thread, returns ``None``.
    """
    context = _worker.get()
    if context is None or context.deadline is None:
        return None
    return max(0.0, context.deadline - time.monotonic())


class _AsyncAdapter(Provider):
    """Presents a :class:`BlockingProvider` as a :class:`Provider` (see as_async_provider)."""

    def __init__(self, blocking: BlockingProvider, max_workers: int) -> None:
        self._blocking = blocking
        self._max_workers = max_workers
        self._limiter: anyio.CapacityLimiter | None = None
        self._limiter_lock = threading.Lock()

    @property
    def wrapped(self) -> BlockingProvider:
        """The blocking provider behind this adapter."""
        return self._blocking

    @property
    def name(self) -> str:
        return self._blocking.name

    @property
    def type(self) -> ProviderType:
        return self._blocking.type

    def __repr__(self) -> str:
        return f"as_async_provider({self._blocking!r})"

    async def _run(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        import anyio
        import anyio.to_thread

        with self._limiter_lock:
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(self._max_workers)
        deadline = anyio.current_effective_deadline()
        # anyio's clock may be offset from time.monotonic (trio's is): carry the remainder.
        context = _WorkerContext(
            None if deadline == math.inf else time.monotonic() + deadline - anyio.current_time()
        )

        def call() -> _T:
            token = _worker.set(context)
            try:
                return function(*args, **kwargs)
            finally:
                _worker.reset(token)

        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def connect(self, config: ProviderConfig) -> None:
        await self._run(self._blocking.connect, config)

    async def disconnect(self) -> None:
        await self._run(self._blocking.disconnect)

    async def validate_credentials(self) -> None:
        await self._run(self._blocking.validate_credentials)

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        return await self._run(self._blocking.list_vms, filter)

    async def get_vm(self, identifier: str) -> VMInfo:
        return await self._run(self._blocking.get_vm, identifier)

    async def search_vms(self, query: str) -> list[VMInfo]:
        return await self._run(self._blocking.search_vms, query)

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        return await self._run(self._blocking.export_vm, identifier, options, progress=progress)

    def get_export_capabilities(self) -> ExportCapabilities:
        return self._blocking.get_export_capabilities()


def as_async_provider(
    provider: Provider | BlockingProvider, *, max_workers: int = DEFAULT_WORKER_LIMIT
) -> Provider:
    """Return ``provider`` as an async :class:`Provider`.

    A :class:`Provider` is returned unchanged. A :class:`BlockingProvider` is wrapped so
    each call runs in an anyio worker thread, at most ``max_workers`` of its calls at once.

    >>> async def main(blocking: BlockingProvider) -> None:
    ...     async with as_async_provider(blocking) as provider:
    ...         vms = await provider.list_vms()

    Raises:
        ConfigurationError: ``provider`` is neither kind, or ``max_workers`` is not 1-1024.
    """
    from hypersdk._validation import shown
    from hypersdk.errors import ConfigurationError

    if type(max_workers) is not int or not 1 <= max_workers <= _MAX_WORKERS:
        raise ConfigurationError(
            f"max_workers: must be an integer from 1 to {_MAX_WORKERS}, got {shown(max_workers)}"
        )
    if isinstance(provider, Provider):
        return provider
    if isinstance(provider, BlockingProvider):
        return _AsyncAdapter(provider, max_workers)
    raise ConfigurationError(
        "provider: must be a hypersdk.Provider or hypersdk.BlockingProvider, "
        f"got {type(provider).__name__}"
    )
