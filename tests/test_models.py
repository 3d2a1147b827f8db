from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hypersdk
from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    PluginMetadata,
    ProviderConfig,
    ProviderType,
    Secret,
    VMFilter,
    VMInfo,
    search_matches,
)
from hypersdk_testing import strategies as hst

P = ProviderType("demo")


def vm(**changes: Any) -> VMInfo:
    fields: dict[str, Any] = {"provider": P, "id": "1", "name": "web-1"}
    fields.update(changes)
    return VMInfo(**fields)


class TestSecret:
    def test_never_shows_its_value(self) -> None:
        secret = Secret("hunter2")
        shown = [
            repr(secret),
            str(secret),
            f"{secret}",
            f"{secret!r}",
            f"{secret:>20}",
            f"{secret}",
        ]
        assert all("hunter2" not in text for text in shown)
        assert secret.reveal() == "hunter2"

    def test_equality_hash_and_pickle(self) -> None:
        assert Secret("a") == Secret("a")
        assert Secret("a") != Secret("b")
        assert hash(Secret("a")) == hash(Secret("a"))
        assert pickle.loads(pickle.dumps(Secret("a"))).reveal() == "a"

    def test_is_immutable_and_typed(self) -> None:
        with pytest.raises(AttributeError):
            Secret("a")._value = "b"
        with pytest.raises(ConfigurationError, match="Secret: must wrap a string"):
            Secret(42)  # type: ignore[arg-type]


class TestProviderConfig:
    def test_repr_masks_password_and_secret_metadata(self) -> None:
        config = ProviderConfig(
            type="x",
            password="pw-123",
            metadata={"api_token": "tok-456", "SecretKey": "sk-789", "region": "fra1"},
        )
        text = repr(config)
        for leaked in ("pw-123", "tok-456", "sk-789"):
            assert leaked not in text
            assert leaked not in str(config)
        assert "fra1" in text
        assert config.password == Secret("pw-123")
        assert config.secret("api_token") == Secret("tok-456")
        assert config.secret("missing") is None

    def test_empty_password_is_none(self) -> None:
        assert ProviderConfig(type="x", password="").password is None

    @pytest.mark.parametrize(
        ("changes", "field", "allowed"),
        [
            ({"type": ""}, "ProviderConfig.type", "non-empty string"),
            ({"port": 70000}, "ProviderConfig.port", "from 0 to 65535"),
            ({"port": True}, "ProviderConfig.port", "from 0 to 65535"),
            ({"timeout": -1}, "ProviderConfig.timeout", "seconds >= 0"),
            ({"timeout": float("nan")}, "ProviderConfig.timeout", "finite"),
            ({"insecure": "yes"}, "ProviderConfig.insecure", "True or False"),
            ({"metadata": {"k": 1}}, "ProviderConfig.metadata['k']", "must be a string"),
            ({"password": 12}, "ProviderConfig.password", "Secret, a string or None"),
        ],
    )
    def test_rejects_bad_values_naming_the_field(
        self, changes: dict[str, Any], field: str, allowed: str
    ) -> None:
        fields: dict[str, Any] = {"type": "x", **changes}
        with pytest.raises(ConfigurationError) as info:
            ProviderConfig(**fields)
        assert field in str(info.value)
        assert allowed in str(info.value)

    def test_frozen_and_metadata_read_only(self) -> None:
        config = ProviderConfig(type="x", metadata={"a": "b"})
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            config.region = "x"  # type: ignore[misc]
        with pytest.raises(TypeError):
            config.metadata["a"] = "c"  # type: ignore[index]

    def test_metadata_is_copied(self) -> None:
        source = {"a": "b"}
        config = ProviderConfig(type="x", metadata=source)
        source["a"] = "changed"
        assert config.metadata["a"] == "b"


class TestVMInfo:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"id": ""}, "VMInfo.id: must be a non-empty string"),
            ({"name": "   "}, "VMInfo.name: must be a non-empty string"),
            ({"memory_mb": -1}, "VMInfo.memory_mb: must be an integer >= 0, got -1"),
            ({"num_cpus": 1.5}, "VMInfo.num_cpus: must be an integer >= 0"),
            ({"storage_gb": -5}, "VMInfo.storage_gb"),
            ({"created_at": datetime(2024, 1, 1)}, "VMInfo.created_at: must be a timezone-aware"),
            ({"updated_at": "2024-01-01"}, "VMInfo.updated_at"),
            (
                {"ip_addresses": ["not-an-ip"]},
                "VMInfo.ip_addresses: must be a sequence of IPv4/IPv6",
            ),
            ({"ip_addresses": [1]}, "VMInfo.ip_addresses[0]: must be a string"),
            ({"tags": {"": "x"}}, "VMInfo.tags: keys must be non-empty strings"),
            ({"tags": ["a"]}, "VMInfo.tags: must be a mapping of strings"),
        ],
    )
    def test_rejects(self, changes: dict[str, Any], message: str) -> None:
        with pytest.raises(
            ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")
        ):
            vm(**changes)

    def test_collections_are_immutable(self) -> None:
        item = vm(ip_addresses=["10.0.0.1", "::1"], tags={"env": "prod"})
        assert item.ip_addresses == ("10.0.0.1", "::1")
        with pytest.raises(TypeError):
            item.tags["env"] = "dev"  # type: ignore[index]
        assert hash(item) == hash(vm(ip_addresses=("10.0.0.1", "::1"), tags={"env": "other"}))

    def test_defaults_are_neutral(self) -> None:
        item = vm()
        assert (
            item.state,
            item.memory_mb,
            item.ip_addresses,
            dict(item.tags),
            item.created_at,
        ) == (
            "",
            0,
            (),
            {},
            None,
        )

    def test_aware_datetime_accepted(self) -> None:
        assert vm(created_at=datetime(2024, 1, 1, tzinfo=UTC)).created_at is not None


class TestVMFilter:
    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            (VMFilter(), True),
            (VMFilter(name_pattern="web-*"), True),
            (VMFilter(name_pattern="WEB-?"), True),  # case-insensitive
            (VMFilter(name_pattern="web"), False),  # whole-name match
            (VMFilter(name_pattern="[a-w]eb-1"), True),
            (VMFilter(name_pattern="[!w]*"), False),
            (VMFilter(state="ACTIVE"), True),
            (VMFilter(state="off"), False),
            (VMFilter(power_state="On"), True),
            (VMFilter(location="FRA1"), True),
            (VMFilter(location="nyc1"), False),
            (VMFilter(tags={"env": "prod"}), True),
            (VMFilter(tags={"env": "Prod"}), False),  # tag values are case-sensitive
            (VMFilter(tags={"env": "prod", "team": "a"}), False),  # every tag must match
            (VMFilter(tags={"bare": ""}), True),
            (VMFilter(tags={"env": ""}), False),  # empty value matches only an empty value
            (VMFilter(min_memory_mb=2048), True),  # inclusive
            (VMFilter(min_memory_mb=2049), False),
            (VMFilter(min_cpus=2), True),
            (VMFilter(min_cpus=3), False),
        ],
    )
    def test_reference_semantics(self, flt: VMFilter, expected: bool) -> None:
        item = vm(
            state="active",
            power_state="on",
            location="fra1",
            tags={"env": "prod", "bare": ""},
            memory_mb=2048,
            num_cpus=2,
        )
        assert flt.matches(item) is expected

    def test_is_empty(self) -> None:
        assert VMFilter().is_empty
        assert not VMFilter(min_cpus=1).is_empty

    @given(hst.vm_infos())
    def test_empty_filter_matches_everything(self, item: VMInfo) -> None:
        assert VMFilter().matches(item)

    @given(hst.vm_infos(), hst.vm_filters)
    def test_adding_a_constraint_never_widens(self, item: VMInfo, flt: VMFilter) -> None:
        if flt.matches(item):
            assert attrs.evolve(flt, min_cpus=0).matches(item)
            assert attrs.evolve(flt, name_pattern="").matches(item)

    def test_rejects_nul_in_pattern(self) -> None:
        with pytest.raises(ConfigurationError, match="VMFilter.name_pattern"):
            VMFilter(name_pattern="a\x00")


class TestSearch:
    item = vm(
        id="4711",
        name="Web-Frontend",
        location="fra1",
        guest_os="Ubuntu 24.04",
        ip_addresses=["10.1.2.3"],
        tags={"env": "prod"},
    )

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("", True),
            ("   ", True),
            ("web", True),
            ("FRONTEND", True),
            ("web fra1", True),
            ("web nyc1", False),
            ("4711", True),
            ("10.1.2", True),
            ("ubuntu", True),
            ("prod", True),
            ("env", True),
            ("windows", False),
        ],
    )
    def test_search_semantics(self, query: str, expected: bool) -> None:
        assert search_matches(self.item, query) is expected


class TestExportModels:
    def test_options_convert_path(self, tmp_path: Path) -> None:
        options = ExportOptions(output_path=str(tmp_path), format="qcow2")
        assert options.output_path == tmp_path

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"format": ""}, "ExportOptions.format: must be a non-empty format name"),
            ({"format": " qcow2"}, "ExportOptions.format"),
            (
                {"compression_level": 23},
                "ExportOptions.compression_level: must be an integer from 0 to 22",
            ),
            ({"compression_level": -1}, "ExportOptions.compression_level"),
            ({"output_path": ""}, "non-empty path"),
            ({"compress": 1}, "ExportOptions.compress: must be True or False"),
        ],
    )
    def test_options_reject(self, changes: dict[str, Any], message: str) -> None:
        fields: dict[str, Any] = {"output_path": "out", "format": "qcow2", **changes}
        with pytest.raises(ConfigurationError, match=message):
            ExportOptions(**fields)

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"checksum": "abc"}, "ExportResult.checksum"),
            ({"checksum": "A" * 64}, "lowercase SHA-256"),
            ({"size": -1}, "ExportResult.size"),
            ({"duration": timedelta(seconds=-1)}, "ExportResult.duration"),
            ({"files": ["../escape.img"]}, "ExportResult.files"),
            ({"files": ["/abs.img"]}, "ExportResult.files"),
            ({"vm_id": ""}, "ExportResult.vm_id"),
        ],
    )
    def test_result_rejects(self, changes: dict[str, Any], message: str) -> None:
        fields: dict[str, Any] = {
            "provider": "p",
            "vm_name": "n",
            "vm_id": "1",
            "format": "raw",
            "output_path": "out",
            **changes,
        }
        with pytest.raises(ConfigurationError, match=message):
            ExportResult(**fields)

    def test_capabilities(self) -> None:
        caps = ExportCapabilities(supported_formats=["qcow2", "RAW"])
        assert caps.supported_formats == ("qcow2", "RAW")
        assert caps.supports_format("raw")
        assert not caps.supports_format("vmdk")
        with pytest.raises(ConfigurationError, match="ExportCapabilities.max_vm_size_gb"):
            ExportCapabilities(max_vm_size_gb=-1)


class TestPluginMetadata:
    def test_valid(self) -> None:
        meta = PluginMetadata(
            name="do",
            version="1.2.0",
            provider_type="digitalocean",
            min_sdk_version="0.1",
            python_requires=">=3.11",
            dependencies=["httpx>=0.28"],
        )
        assert meta.capabilities == ExportCapabilities()

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"name": ""}, "PluginMetadata.name"),
            ({"version": "not a version"}, "PluginMetadata.version: must be a PEP 440 version"),
            ({"version": ""}, "PluginMetadata.version"),
            ({"provider_type": ""}, "PluginMetadata.provider_type"),
            ({"min_sdk_version": "x.y"}, "PluginMetadata.min_sdk_version"),
            ({"python_requires": "3.11"}, "PluginMetadata.python_requires"),
            ({"dependencies": ["??"]}, "PluginMetadata.dependencies"),
            ({"capabilities": {}}, "PluginMetadata.capabilities: must be an ExportCapabilities"),
        ],
    )
    def test_rejects(self, changes: dict[str, Any], message: str) -> None:
        fields: dict[str, Any] = {"name": "n", "version": "1.0", "provider_type": "t", **changes}
        with pytest.raises(ConfigurationError, match=message):
            PluginMetadata(**fields)


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="VMInfo.id"):
        vm(id="")


@given(st.sampled_from(hst.HOSTILE_NAMES))
def test_hostile_names_are_valid_vm_names(name: str) -> None:
    assert vm(name=name).name == name


def test_well_known_provider_types() -> None:
    assert hypersdk.AWS == "aws"
    assert hypersdk.KUBEVIRT == "kubevirt"
