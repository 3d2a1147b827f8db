"""ProviderConformance: the class a plugin author subclasses to run the whole contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pytest

from hypersdk_testing._contract import CONTRACT, ContractCheck

if TYPE_CHECKING:
    import types
    from collections.abc import Callable, Mapping
    from pathlib import Path

    import respx
    from hypothesis import settings

    from hypersdk import ProviderConfig, VMInfo
    from hypersdk_testing._fakecloud import FakeCloud

__all__ = ["ProviderConformance", "DEFAULT_MAX_EXAMPLES"]

DEFAULT_MAX_EXAMPLES = 3
"""Generated examples per property check and world size (``--hypersdk-max-examples``)."""


class ProviderConformance:
    """Subclass it, name your plugin module, aim a config at the mock, serve the mock.

    ::

        from hypersdk_testing import FakeCloud, ProviderConformance
        import my_plugin

        class TestMyProvider(ProviderConformance):
            plugin = my_plugin

            def configure(self, cloud: FakeCloud) -> ProviderConfig:
                return ProviderConfig(type="mycloud", endpoint=API, password=cloud.token)

            def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
                ...  # routes serving cloud.vms in your API's dialect

    Every contract check becomes one test, named after its ID (``LIST-COMPLETE`` runs as
    ``test_list_complete``). The knobs below are class attributes with working defaults.
    """

    # Not a ClassVar: mypy reads ``plugin = my_plugin`` in a subclass body as an instance
    # variable and would reject it as overriding one.
    plugin: types.ModuleType
    """The plugin module: it defines ``PLUGIN_INFO`` and ``new_provider``."""

    page_size: ClassVar[int] = 20
    """The most VMs your mocked API puts on one page (``FakeCloud.page`` caps at it)."""

    world_sizes: ClassVar[tuple[int, ...] | None] = None
    """World sizes LIST-COMPLETE tries; ``None``: 0, 1, the page boundaries and 250."""

    auth_header: ClassVar[str] = "Authorization"
    """The header that carries the token (``FakeCloud.intercept`` checks it)."""

    auth_scheme: ClassVar[str] = "Bearer"
    """The scheme before the token in that header; ``""`` for the bare token."""

    exclusions: ClassVar[Mapping[str, str]] = {}
    """Check ID -> why it cannot apply to this plugin. A reason is required."""

    contract_version: ClassVar[int | None] = None
    """The contract version the plugin is certified against; newer checks only warn."""

    compared_fields: ClassVar[tuple[str, ...] | None] = None
    """The VMInfo fields your API carries (and the suite compares).

    ``None``: the fields the contract version that runs names
    (``hypersdk_testing._contract.COMPARED_FIELDS``), so a field added to ``VMInfo``
    never widens a plugin's checks until its contract does.
    """

    required_config: ClassVar[tuple[str, ...] | None] = None
    """Config fields (or ``metadata.<key>``) without which connect must refuse to work.

    ``None`` (the default): the field where ``configure()`` placed ``cloud.token``
    (``password``, ``username`` or ``metadata.<key>``).
    """

    disk_image_formats: ClassVar[tuple[str, ...]] = ("raw", "img")
    """Formats whose main file is the VM's disk, byte for byte (checked against it)."""

    retry_budget: ClassVar[float] = 3.0
    """Seconds a provider may keep retrying a failing API before it must give up."""

    max_examples: ClassVar[int | None] = None
    """Generated examples per property check and world size (default 2)."""

    anyio_backend: ClassVar[str] = "asyncio"
    """The anyio backend the checks run on."""

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        """Return a config that points the provider at the mocked API, with cloud.token."""
        raise NotImplementedError(f"{type(self).__name__} must define configure(self, cloud)")

    def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        """Add the routes that serve ``cloud`` in your API's dialect to ``router``."""
        raise NotImplementedError(
            f"{type(self).__name__} must define mock_api(self, router, cloud)"
        )

    def representable(self, vm: VMInfo) -> VMInfo:
        """``vm`` as your API can express it (override when it drops or reshapes fields).

        For example an API whose tags are bare labels would return
        ``attrs.evolve(vm, tags={key: "" for key in vm.tags})``.
        """
        return vm

    def hypothesis_settings(self) -> settings:
        """The Hypothesis settings of the property checks (override to explore further)."""
        from hypothesis import HealthCheck, Phase, settings

        examples = _cli_max_examples or self.max_examples or DEFAULT_MAX_EXAMPLES
        return settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,  # a plugin's CI must not flake; raise max_examples to explore
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )

    def _run_check(self, check: ContractCheck, tmp_path: Path) -> None:
        from hypersdk_testing._checks import CHECKS
        from hypersdk_testing._harness import Harness

        harness = Harness(self, check, tmp_path)
        if check.area not in ("suite", "identity"):
            blocker = _identity_blocker(self)
            if blocker:
                # One root cause, one failure: the IDENTITY check names it, with its fix.
                pytest.skip(f"blocked by {blocker}")
        try:
            with harness.guard:  # no connection leaves 127.0.0.1 while the check runs
                CHECKS[check.id](harness)
        finally:
            harness.close()


def _identity_blocker(suite: ProviderConformance) -> str:
    """``"IDENTITY-LOADS: <why>"`` when the plugin cannot be loaded at all, else ``""``."""
    import types

    from hypersdk_testing._loader import plugin_problems

    module = getattr(suite, "plugin", None)
    if not isinstance(module, types.ModuleType):
        return ""  # SUITE-CONFIG reports it
    try:
        problems = plugin_problems(module)
    except Exception:  # the loader's own trouble: let the checks speak for themselves
        return ""
    # Capabilities that disagree block nothing: IDENTITY-CAPABILITIES says so, and the
    # checks that need a capability read PLUGIN_INFO's.
    problems = [problem for problem in problems if "capabilities" not in problem]
    if not problems:
        return ""
    kind = "IDENTITY-TYPE" if "provider_type" in problems[0] else "IDENTITY-LOADS"
    return f"{kind} (fix it first): {problems[0]}"


_cli_max_examples: int | None = None


def set_cli_max_examples(value: int | None) -> None:
    """Set by the pytest plugin from ``--hypersdk-max-examples``."""
    global _cli_max_examples  # noqa: PLW0603  (one process-wide command-line setting)
    _cli_max_examples = value


def _make_test(check: ContractCheck) -> Callable[[ProviderConformance, Path], None]:
    def test(self: ProviderConformance, tmp_path: Path) -> None:
        from hypersdk_testing._failure import ContractViolation

        __tracebackhide__ = True
        try:
            self._run_check(check, tmp_path)
        except ContractViolation as violation:
            # The message is the diagnosis; the suite's own frames would only bury it.
            raise violation.with_traceback(None) from None

    test.__name__ = check.test_name
    test.__qualname__ = f"ProviderConformance.{check.test_name}"
    test.__doc__ = f"{check.id}: {check.rule}"
    return pytest.mark.hypersdk_contract(check.id)(test)


for _check in CONTRACT:
    setattr(ProviderConformance, _check.test_name, _make_test(_check))
del _check
