"""The machinery every check uses: worlds, sessions against the mocked API, failures."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import anyio
import anyio.lowlevel
import attrs
import httpx
import respx

from hypersdk import (
    BlockingProvider,
    ExportCapabilities,
    HyperSDKError,
    PluginMetadata,
    Provider,
    ProviderConfig,
    ProviderType,
    VMInfo,
    as_async_provider,
)
from hypersdk_testing._contract import COMPARED_FIELDS, CONTRACT_VERSION
from hypersdk_testing._failure import (
    ContractViolation,
    SuiteError,
    format_exchange,
    violation_message,
)
from hypersdk_testing._fakecloud import DEFAULT_DISK_SIZE, STALL_CAP, FakeCloud
from hypersdk_testing._guard import NetworkGuard
from hypersdk_testing._loopback import LoopbackNetwork
from hypersdk_testing._world import standard_world

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
    from pathlib import Path

    from hypothesis.strategies import SearchStrategy

    from hypersdk_testing._contract import ContractCheck
    from hypersdk_testing._suite import ProviderConformance

__all__ = ["Harness", "Session", "describe_error", "token_fields", "track_clients"]

_T = TypeVar("_T")


@attrs.define
class Session:
    """One scenario: a FakeCloud served by the author's routes, and a provider aimed at it."""

    cloud: FakeCloud
    router: respx.MockRouter
    config: ProviderConfig
    provider: Provider
    network: LoopbackNetwork
    calls: list[tuple[httpx.Request, httpx.Response | None]] = attrs.Factory(list)

    def exchange(self) -> list[tuple[httpx.Request, httpx.Response | None]]:
        """Every request so far with its response (``None`` when the transport raised)."""
        live = [(call.request, call.optional_response) for call in self.router.calls]
        return self.calls + live


def _stall_seconds(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return STALL_CAP if not isinstance(read, int | float) else min(float(read), STALL_CAP)


class _NetworkLikeRouter(respx.MockRouter):
    """A router that behaves like a network: requests take a checkpoint, and can stall.

    Without the checkpoint a mocked request completes without yielding, and code that
    forgets to shield its cleanup from cancellation would pass by accident. A stalled
    request (``Fault.stall``) waits for the client's read timeout, then times out. A
    request to a loopback address of the socket path (an httpx plugin configured with
    ``cloud.loopback_url``) is matched as the URL it stands for.
    """

    cloud: FakeCloud | None = None
    network: LoopbackNetwork | None = None

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        await anyio.lowlevel.checkpoint()
        if self.network is not None:
            request = self.network.to_original(request)
        if self.cloud is not None and self.cloud.stalls(request):
            self.calls.record(request, None)
            await anyio.sleep(_stall_seconds(request))
            raise httpx.ReadTimeout("injected: the server never answered", request=request)
        return await super().async_handler(request)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.network is not None:
            request = self.network.to_original(request)
        if self.cloud is not None and self.cloud.stalls(request):
            self.calls.record(request, None)
            time.sleep(_stall_seconds(request))
            raise httpx.ReadTimeout("injected: the server never answered", request=request)
        return super().handler(request)


class _Capture(logging.Handler):
    """Keeps every record, at every level, from every logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._records_lock:
            self.records.append(record)

    def texts(self) -> list[tuple[logging.LogRecord, str]]:
        """Each record with its full text: message, arguments applied, traceback included."""
        with self._records_lock:
            records = list(self.records)
        shown = []
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in records:
            try:
                text = formatter.format(record)
            except Exception:  # a broken format string is the plugin's bug, not ours
                text = f"{record.msg!r} % {record.args!r}"
            shown.append((record, text))
        return shown


@contextlib.contextmanager
def _hypothesis_storage(directory: Path) -> Iterator[None]:
    """Keep Hypothesis' files (its constants cache) in ``directory``, not the author's cwd.

    ``database=None`` keeps no examples, but Hypothesis still caches constants under
    ``.hypothesis/`` in the working directory: the docs promise the suite writes nothing
    into the author's project.
    """
    from hypothesis import configuration

    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(directory)
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(previous)


def token_fields(config: ProviderConfig, token: str) -> tuple[str, ...]:
    """The config fields (``password``, ``username``, ``metadata.<key>``) holding ``token``."""
    found: list[str] = []
    if config.password is not None and token in config.password.reveal():
        found.append("password")
    if token in config.username:
        found.append("username")
    found.extend(f"metadata.{key}" for key, value in config.metadata.items() if token in value)
    return tuple(found)


def describe_error(error: BaseException) -> str:
    """``'VMNotFoundError: no VM 42'`` (the module is shown for non-hypersdk errors)."""
    kind = type(error)
    name = (
        kind.__qualname__
        if isinstance(error, HyperSDKError)
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return f"{name}: {error}"


@contextlib.contextmanager
def track_clients() -> Iterator[list[httpx.Client | httpx.AsyncClient]]:
    """Record every httpx client created inside the block."""
    created: list[httpx.Client | httpx.AsyncClient] = []
    original_sync = httpx.Client.__init__
    original_async = httpx.AsyncClient.__init__

    def sync_init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        original_sync(self, *args, **kwargs)
        created.append(self)

    def async_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        original_async(self, *args, **kwargs)
        created.append(self)

    httpx.Client.__init__ = sync_init  # type: ignore[method-assign]
    httpx.AsyncClient.__init__ = async_init  # type: ignore[method-assign]
    try:
        yield created
    finally:
        httpx.Client.__init__ = original_sync  # type: ignore[method-assign]
        httpx.AsyncClient.__init__ = original_async  # type: ignore[method-assign]


class Harness:
    """What one check of one conformance class works with."""

    def __init__(self, suite: ProviderConformance, check: ContractCheck, tmp_path: Path) -> None:
        self.suite = suite
        self.check = check
        self.tmp_path = tmp_path
        self.logs = _Capture()
        self.last_session: Session | None = None
        self._tokens: set[str] = set()
        self.guard = NetworkGuard()
        """Refuses connections outside loopback for the length of the check."""
        self._network: LoopbackNetwork | None = None

    @property
    def contract(self) -> int:
        """The contract version that runs: the plugin's pin, else the newest."""
        pinned = self.suite.contract_version
        return pinned if type(pinned) is int else CONTRACT_VERSION

    @property
    def network(self) -> LoopbackNetwork:
        """The check's socket path (loopback listeners start on first use)."""
        if self._network is None:
            self._network = LoopbackNetwork()
        return self._network

    def close(self) -> None:
        """End the check: close the socket path's listeners and connections."""
        if self._network is not None:
            self._network.close()

    # --- the plugin ----------------------------------------------------------------------

    @property
    def info(self) -> PluginMetadata:
        """The plugin's ``PLUGIN_INFO`` (IDENTITY-LOADS checks it is one)."""
        info = getattr(self.suite.plugin, "PLUGIN_INFO", None)
        if not isinstance(info, PluginMetadata):
            self.fail(
                expected="PLUGIN_INFO to be a hypersdk.PluginMetadata",
                actual=f"{type(info).__name__}",
                context="this check needs PLUGIN_INFO; see IDENTITY-LOADS",
            )
        return info

    @property
    def provider_type(self) -> ProviderType:
        """``PLUGIN_INFO.provider_type``."""
        return self.info.provider_type

    @property
    def capabilities(self) -> ExportCapabilities:
        """``PLUGIN_INFO.capabilities``."""
        return self.info.capabilities

    def logger(self) -> logging.Logger:
        """The logger handed to ``new_provider`` (captured at DEBUG)."""
        logger = logging.getLogger(f"hypersdk.conformance.{self.provider_type}")
        logger.setLevel(logging.DEBUG)
        return logger

    def build(self, config: ProviderConfig) -> Provider:
        """``plugin.new_provider(config, logger)``, presented as an async Provider.

        A ConfigurationError from the factory propagates (LIFECYCLE-MISSING-CONFIG wants
        it); anything else unexpected is a violation of the current check.
        """
        factory = getattr(self.suite.plugin, "new_provider", None)
        if not callable(factory):
            self.fail(
                expected="the plugin module to define new_provider(config, logger)",
                actual=f"new_provider is {type(factory).__name__}",
                context="see IDENTITY-LOADS",
            )
        try:
            built = factory(config, self.logger())
        except HyperSDKError:
            raise
        except Exception as exc:
            self.fail(
                expected="new_provider(config, logger) to build a provider",
                actual=f"it raised {describe_error(exc)}",
                context="see IDENTITY-LOADS",
            )
        if not isinstance(built, Provider | BlockingProvider):
            self.fail(
                expected="new_provider() to return a Provider or BlockingProvider",
                actual=f"it returned {type(built).__name__}",
                context="see IDENTITY-LOADS",
            )
        return as_async_provider(built)

    def required_config(self, config: ProviderConfig, token: str) -> tuple[str, ...]:
        """The suite's ``required_config``, or where ``config`` holds ``token`` when unset."""
        explicit = self.suite.required_config
        if explicit is not None:
            return tuple(explicit)
        return token_fields(config, token)

    # --- worlds --------------------------------------------------------------------------

    def world(self, size: int, *, seed: int = 0) -> list[VMInfo]:
        """A deterministic world of ``size`` VMs, made representable by the suite."""
        return [
            self.suite.representable(vm)
            for vm in standard_world(self.provider_type, size, seed=seed)
        ]

    def expected(self, vms: list[VMInfo]) -> list[dict[str, object]]:
        """The compared fields of ``vms`` (what list_vms must return, field by field)."""
        return [self.comparable(vm) for vm in vms]

    @property
    def compared_fields(self) -> tuple[str, ...]:
        """``compared_fields``, or the default of the contract version that runs."""
        explicit = self.suite.compared_fields
        return tuple(explicit) if explicit is not None else COMPARED_FIELDS[self.contract]

    def comparable(self, vm: VMInfo) -> dict[str, object]:
        """The fields of ``vm`` the suite compares (``compared_fields``)."""
        return {name: getattr(vm, name) for name in self.compared_fields}

    # --- running -------------------------------------------------------------------------

    def for_all(self, strategy: SearchStrategy[_T], body: Callable[[_T], None]) -> None:
        """Run ``body`` for values drawn from ``strategy`` under the suite's settings."""
        from hypothesis import given

        from_body: list[BaseException] = []

        @self.suite.hypothesis_settings()
        @given(strategy)
        def run(value: _T) -> None:
            try:
                body(value)
            except Exception as exc:
                from_body.append(exc)
                raise

        try:
            with _hypothesis_storage(self.tmp_path / "hypothesis"):
                run()
        except ContractViolation as exc:
            # Hypothesis notes repeat the whole generated world; the message summarises it.
            if hasattr(exc, "__notes__"):
                del exc.__notes__
            raise
        except Exception as exc:
            if any(exc is raised for raised in from_body):
                raise
            # Drawing the inputs failed before the plugin was called: the suite's bug.
            raise SuiteError(
                self.check.id, f"generating an input raised {describe_error(exc)}"
            ) from exc

    def run(self, function: Callable[[], Awaitable[_T]]) -> _T:
        """Run an async step on the suite's anyio backend, capturing logs at DEBUG."""
        root = logging.getLogger()
        previous = root.level
        root.addHandler(self.logs)
        root.setLevel(logging.DEBUG)
        try:
            return anyio.run(function, backend=self.suite.anyio_backend)
        finally:
            root.removeHandler(self.logs)
            root.setLevel(previous)

    @contextlib.asynccontextmanager
    async def session(
        self,
        vms: list[VMInfo] | None = None,
        *,
        connect: bool = True,
        cloud: FakeCloud | None = None,
        adjust: Callable[[ProviderConfig], ProviderConfig] | None = None,
        disk_size: int | None = None,
    ) -> AsyncIterator[Session]:
        """A provider connected to a FakeCloud of ``vms``, served by the author's mock_api.

        The routes are served through respx (httpx clients) and on the check's loopback
        listeners (every other client; ``cloud.loopback_url``). Requests no route serves
        fail as connection errors and are kept in ``cloud.unmatched`` (HTTP-MOCKED reports
        them). The provider is disconnected on exit, shielded from cancellation.
        """
        if cloud is None:
            cloud = FakeCloud(
                vms if vms is not None else self.world(3),
                page_size=self.suite.page_size,
                auth_scheme=self.suite.auth_scheme,
                auth_header=self.suite.auth_header,
                disk_size=DEFAULT_DISK_SIZE if disk_size is None else disk_size,
            )
        network = self.network
        cloud._network = network  # the suite serves the cloud it built
        config = self.suite.configure(cloud)
        if adjust is not None:
            config = adjust(config)
        self._tokens.add(cloud.token)
        router = _NetworkLikeRouter(assert_all_mocked=True, assert_all_called=False)
        router.cloud = cloud
        router.network = network
        self.suite.mock_api(router, cloud)

        def unmatched(request: httpx.Request) -> httpx.Response:
            cloud.unmatched.append(request)
            raise httpx.ConnectError(
                f"hypersdk_testing: no mock_api route serves {request.method} {request.url}",
                request=request,
            )

        router.route().mock(side_effect=unmatched)
        router.start()
        network.serve(router, cloud)
        session: Session | None = None
        try:
            provider = self.build(config)
            session = Session(
                cloud=cloud, router=router, config=config, provider=provider, network=network
            )
            self.last_session = session
            if connect:
                try:
                    await provider.connect(config)
                except Exception as exc:
                    self.fail(
                        expected="connect() with the config from configure(cloud) to succeed",
                        actual=f"it raised {describe_error(exc)}",
                        context="see LIFECYCLE-CONNECT",
                    )
            yield session
        finally:
            if session is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await session.provider.disconnect()
                session.calls = session.exchange()
            network.stop_serving()
            router.stop(clear=False, reset=True, quiet=True)

    @contextlib.contextmanager
    def private_tempdir(self) -> Iterator[Path]:
        """Point :mod:`tempfile` at a directory of this check's own for the block.

        Whatever is left in it afterwards the plugin left in "the system temp dir"; the
        real one is shared with other processes, whose files must not count.
        """
        import tempfile

        directory = self.tmp_path / "system-tmp"
        directory.mkdir(parents=True, exist_ok=True)
        previous = tempfile.tempdir
        tempfile.tempdir = str(directory)
        try:
            yield directory
        finally:
            tempfile.tempdir = previous

    # --- failing -------------------------------------------------------------------------

    def adopt(self, session: Session) -> None:
        """Report on ``session``, made by another check's harness (a cached scenario).

        Its token joins :attr:`secrets`: the check that reports a leak may not be the one
        whose session handed the token out (``--hypersdk-check`` runs one at a time).
        """
        self._tokens.add(session.cloud.token)
        self.last_session = session

    @property
    def secrets(self) -> set[str]:
        """Every token handed out so far, or seen by a session reported on (redacted)."""
        tokens = set(self._tokens)
        if self.last_session is not None:
            tokens.add(self.last_session.cloud.token)
        return tokens

    def fail(
        self,
        *,
        expected: str,
        actual: str,
        context: str | None = None,
        session: Session | None = None,
        since: int | None = None,
    ) -> NoReturn:
        """Raise the :class:`ContractViolation` of the current check.

        ``since`` is the contract version that made this a violation (default: the
        check's own); for a plugin pinned to an older contract it is a warning.
        """
        session = session or self.last_session
        if session is not None:
            self._tokens.add(session.cloud.token)
        if (
            session is not None
            and session.cloud.misplaced_token
            and self.check.id != "SUITE-CONFIG"
        ):
            # One root cause, one failure: SUITE-CONFIG names the auth settings.
            import pytest

            pytest.skip(
                f"blocked by SUITE-CONFIG: the plugin sent cloud.token in "
                f"{session.cloud.misplaced_token[0]}, not where auth_header/auth_scheme say"
            )
        exchange = None
        if session is not None:
            exchange = format_exchange(session.exchange(), self.secrets)
            served = len(session.exchange()) - len(session.cloud.unmatched)
            if served > len(session.cloud.requests):
                context = (context + "; " if context else "") + (
                    f"{served - len(session.cloud.requests)} request(s) were served without "
                    "cloud.intercept(request): call it first in every mock_api route, or "
                    "tokens and injected faults are never checked"
                )
            if session.cloud.unmatched:
                unmatched = ", ".join(
                    f"{request.method} {request.url}" for request in session.cloud.unmatched[:3]
                )
                context = (context + "; " if context else "") + (
                    f"requests no mock_api route served: {unmatched}"
                )
        if self.guard.blocked:
            targets = sorted({blocked.target for blocked in self.guard.blocked})
            context = (context + "; " if context else "") + (
                f"connections outside 127.0.0.1 were blocked: {', '.join(targets[:3])} "
                "(see HTTP-MOCKED: give the plugin cloud.loopback_url(...) in configure())"
            )
        if self._network is not None and self._network.route_errors:
            context = (context + "; " if context else "") + (
                f"a mock_api route raised: {self._network.route_errors[0]}"
            )
        message = violation_message(
            self.check,
            expected=expected,
            actual=actual,
            exchange=exchange,
            context=context,
            secrets=self.secrets,
        )
        raise ContractViolation(
            self.check.id, message, since=self.check.since if since is None else since
        )
