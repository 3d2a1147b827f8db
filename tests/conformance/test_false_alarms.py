"""The suite never blames a correct plugin: generated inputs are valid, its own bugs are its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypersdk import ProviderType, VMFilter, VMInfo
from hypersdk_testing import check_by_id
from hypersdk_testing._failure import SuiteError
from hypersdk_testing._harness import Harness
from hypersdk_testing.strategies import HOSTILE_NAMES, filters_for, worlds_of_size
from tests.conformance.reference_suite import RefcloudConformance

if TYPE_CHECKING:
    from pathlib import Path

_TYPE = ProviderType("refcloud")


@settings(max_examples=30, database=None)
@given(st.data())
def test_filters_for_hostile_names_are_valid_and_match_their_vm(data: st.DataObject) -> None:
    world = data.draw(worlds_of_size(_TYPE, 3))
    world = [
        attrs.evolve(vm, name=name) for vm, name in zip(world, HOSTILE_NAMES[5:], strict=False)
    ]
    vm_filter = data.draw(filters_for(world))  # would raise inside the strategy before
    assert isinstance(vm_filter, VMFilter)


def test_a_nul_name_gets_a_valid_exact_pattern() -> None:
    from hypersdk_testing.strategies import _glob_escape

    vm = VMInfo(provider=_TYPE, id="1", name="name\x00with-nul")
    pattern = _glob_escape(vm.name).upper()
    assert VMFilter(name_pattern=pattern).matches(vm)


def test_an_error_drawing_inputs_is_the_suites_not_a_contract_failure(tmp_path: Path) -> None:
    harness = Harness(RefcloudConformance(), check_by_id("LIST-FILTER"), tmp_path)

    def broken(_: object) -> int:
        raise ValueError("a generated input was invalid")

    with pytest.raises(SuiteError, match=r"\[LIST-FILTER\] hypersdk_testing failed") as caught:
        harness.for_all(st.integers().map(broken), lambda _: None)
    assert not isinstance(caught.value, AssertionError)  # never reported as a violation


def test_an_error_in_the_body_is_not_relabelled(tmp_path: Path) -> None:
    harness = Harness(RefcloudConformance(), check_by_id("LIST-FILTER"), tmp_path)

    def body(_: int) -> None:
        raise RuntimeError("from the check")

    with pytest.raises(RuntimeError, match="from the check"):
        harness.for_all(st.integers(), body)


pytest_plugins = ["pytester"]


def test_a_suite_error_is_reported_with_status_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from hypersdk_testing._checks import CHECKS

    def broken(h: Harness) -> None:
        h.for_all(st.integers().map(lambda _: 1 // 0), lambda _: None)

    monkeypatch.setitem(CHECKS, "LIST-FILTER", broken)  # pytester runs in this process
    pytester.makepyfile(
        test_suite_bug=(
            "from tests.conformance.variants import conformance_class\n"
            "TestVariant = conformance_class('reference')\n"
        )
    )
    pytester.runpytest(
        "-p", "no:cacheprovider", "--hypersdk-report=report", "--hypersdk-check=LIST-FILTER"
    )
    document = json.loads((pytester.path / "report.json").read_text())
    (check,) = document["plugins"][0]["checks"]
    assert check["status"] == "error", check
    assert "bug in the suite, not in your plugin" in check["reason"]


_METADATA_TOKEN = (
    "from hypersdk import ProviderConfig\n"
    "from tests.conformance.reference_suite import BASE\n"
    "from tests.conformance.variants import MetadataTokenRefcloud, conformance_class, "
    "plugin_module\n"
    "class TestVariant(conformance_class('reference')):\n"
    "    plugin = plugin_module('metadata_token', MetadataTokenRefcloud)\n"
    "{knobs}"
    "    def configure(self, cloud):\n"
    "        return ProviderConfig(type='refcloud', endpoint=BASE, "
    "metadata={{'token': cloud.token}}, timeout=10)\n"
)


def _outcomes(pytester: pytest.Pytester, source: str, *checks: str) -> dict[str, dict[str, str]]:
    import json

    pytester.makepyfile(test_metadata_token=source)
    args = [f"--hypersdk-check={check}" for check in checks]
    pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-report=report", *args)
    document = json.loads((pytester.path / "report.json").read_text())
    return {check["id"]: check for check in document["plugins"][0]["checks"]}


def test_required_config_is_inferred_from_where_configure_puts_the_token(
    pytester: pytest.Pytester,
) -> None:
    # The README's configure() (token in metadata) used to fail: required_config was
    # ("password",) whatever configure() did.
    outcomes = _outcomes(
        pytester,
        _METADATA_TOKEN.format(knobs=""),
        "LIFECYCLE-MISSING-CONFIG",
        "SUITE-CONFIG",
    )
    assert outcomes["LIFECYCLE-MISSING-CONFIG"]["status"] == "passed", outcomes
    assert outcomes["SUITE-CONFIG"]["status"] == "passed", outcomes


def test_a_required_field_configure_leaves_unset_is_a_suite_config_failure(
    pytester: pytest.Pytester,
) -> None:
    outcomes = _outcomes(
        pytester,
        _METADATA_TOKEN.format(knobs="    required_config = ('password',)\n"),
        "LIFECYCLE-MISSING-CONFIG",
        "SUITE-CONFIG",
    )
    suite = outcomes["SUITE-CONFIG"]
    assert suite["status"] == "failed", outcomes
    assert "required_config names 'password', which configure(cloud) leaves unset" in str(
        suite["reason"]
    )
    missing = outcomes["LIFECYCLE-MISSING-CONFIG"]
    assert "connect() succeeded" not in str(missing["reason"]), missing
    assert "see SUITE-CONFIG" in str(missing["reason"]), missing


def test_the_api_docs_find_contract_versions_own_docstring() -> None:
    # autodata on a re-exported int rendered int's docstring ("int([x]) -> integer").
    analyzer = pytest.importorskip("sphinx.pycode").ModuleAnalyzer.for_module("hypersdk_testing")
    docs = analyzer.find_attr_docs()
    assert "contract version" in " ".join(docs[("", "CONTRACT_VERSION")])


def test_fakecloud_docs_name_the_fault_methods_that_exist() -> None:
    import re

    from hypersdk_testing import FakeCloud, Fault

    for text in (Fault.__doc__ or "", FakeCloud.__doc__ or ""):
        for method in re.findall(r"Fault\.(\w+)\(", text):
            assert hasattr(Fault, method), f"the docs name Fault.{method}(), which does not exist"


def test_the_suite_writes_no_hypothesis_directory_into_the_project(
    pytester: pytest.Pytester,
) -> None:
    from hypothesis import configuration

    project = pytester.path / ".hypothesis"
    previous = getattr(configuration, "__hypothesis_home_directory", None)
    configuration.set_hypothesis_home_dir(project)  # as when run from the author's project
    try:
        pytester.makepyfile(
            test_x=(
                "from tests.conformance.variants import conformance_class\n"
                "TestVariant = conformance_class('reference')\n"
            )
        )
        result = pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-check=LIST-FILTER")
        result.assert_outcomes(passed=1)
    finally:
        configuration.set_hypothesis_home_dir(previous)
    assert not project.exists()


def test_compared_fields_are_pinned_per_contract_version(tmp_path: Path) -> None:
    from hypersdk_testing._contract import COMPARED_FIELDS, CONTRACT_VERSION

    # Every version names its fields; a model field added later is not among them.
    assert set(COMPARED_FIELDS) == set(range(1, CONTRACT_VERSION + 1))
    known = {field.name for field in attrs.fields(VMInfo)}
    for fields in COMPARED_FIELDS.values():
        assert {"id", "name"} <= set(fields) <= known
    for version in range(1, CONTRACT_VERSION + 1):
        pinned = type("Pinned", (RefcloudConformance,), {"contract_version": version})
        harness = Harness(pinned(), check_by_id("LIST-COMPLETE"), tmp_path)
        assert harness.compared_fields == COMPARED_FIELDS[version]
    chosen = type("Chosen", (RefcloudConformance,), {"compared_fields": ("id", "name")})
    assert Harness(chosen(), check_by_id("LIST-COMPLETE"), tmp_path).compared_fields == (
        "id",
        "name",
    )


def test_a_field_difference_names_the_suite_setting() -> None:
    from hypersdk_testing._checks.discovery import difference

    problem = difference(
        [{"id": "1", "name": "a", "tags": {}}], [{"id": "1", "name": "a", "tags": {"x": ""}}]
    )
    assert "compared_fields" in problem
    assert "representable()" in problem


def test_a_token_in_another_header_is_one_suite_config_failure(pytester: pytest.Pytester) -> None:
    # The mock looks for X-Auth-Token; the plugin sends Authorization: Bearer. Every
    # request is a 401: one SUITE-CONFIG failure names the settings, the rest are blocked.
    checks = ("SUITE-CONFIG", "LIFECYCLE-CONNECT", "LIST-COMPLETE", "GET-AGREES", "FAULT-TRANSIENT")
    pytester.makepyfile(
        test_auth=(
            "from tests.conformance.variants import conformance_class\n"
            "TestVariant = conformance_class('reference', auth_header='X-Auth-Token', "
            "auth_scheme='')\n"
        )
    )
    import json

    args = [f"--hypersdk-check={check}" for check in checks]
    pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-report=report", *args)
    document = json.loads((pytester.path / "report.json").read_text())
    outcomes = {check["id"]: check for check in document["plugins"][0]["checks"]}
    suite = outcomes.pop("SUITE-CONFIG")
    assert suite["status"] == "failed", suite
    reason = str(suite["reason"])
    assert "header 'authorization' with scheme 'Bearer'" in reason
    assert "auth_header = 'X-Auth-Token'" in reason
    assert "auth_scheme = ''" in reason
    for check_id, outcome in outcomes.items():
        assert outcome["status"] == "skipped", (check_id, outcome)
        assert str(outcome["reason"]).startswith("blocked by SUITE-CONFIG"), outcome


def test_an_identity_failure_blocks_its_dependents(pytester: pytest.Pytester) -> None:
    # One root cause, one failure: a wrong provider_type used to fail 11-28 checks with
    # unrelated fix lines; now the IDENTITY checks fail and the rest say what blocks them.
    import json

    pytester.makepyfile(
        test_wrong_type=(
            "from tests.conformance.variants import conformance_class\n"
            "TestVariant = conformance_class('wrong_type')\n"
        )
    )
    pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-report=report")
    document = json.loads((pytester.path / "report.json").read_text())
    outcomes = {check["id"]: check for check in document["plugins"][0]["checks"]}
    failed = sorted(check_id for check_id, o in outcomes.items() if o["status"] == "failed")
    assert failed == ["IDENTITY-LOADS", "IDENTITY-TYPE"], failed
    blocked = [o for o in outcomes.values() if o["status"] == "skipped"]
    assert blocked
    for outcome in blocked:
        reason = str(outcome["reason"])
        assert reason.startswith(("blocked by IDENTITY-TYPE", "not claimed")), reason


def test_generated_vms_list_each_address_once() -> None:
    # A repeated address made OpenStack's (de-duplicating) mapping fail LIST-COMPLETE.
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from hypersdk_testing.strategies import vm_infos

    with pytest.raises(NoSuchExample):
        find(
            vm_infos(),
            lambda vm: len(set(vm.ip_addresses)) < len(vm.ip_addresses),
            settings=settings(max_examples=1000, database=None),
        )
