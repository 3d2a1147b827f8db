from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    PluginMetadata,
    ProviderConfig,
    Secret,
    VMFilter,
    VMInfo,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from hypersdk_testing import strategies as hst


@given(
    st.one_of(
        hst.vm_infos(),
        hst.vm_filters,
        hst.export_options(),
        hst.export_results,
        hst.export_capabilities,
        hst.plugin_metadata,
        hst.provider_configs(),
    )
)
def test_every_model_round_trips_through_json(model: Any) -> None:
    text = to_json(model, reveal_secrets=True)
    assert from_json(type(model), text) == model
    assert from_dict(type(model), json.loads(text)) == model


def test_wire_form() -> None:
    vm = VMInfo(
        provider="p",
        id="1",
        name="n",
        tags={"a": "b"},
        ip_addresses=["::1"],
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    data = to_dict(vm)
    assert data["created_at"] == "2024-05-01T12:00:00+00:00"
    assert data["tags"] == {"a": "b"}
    assert data["ip_addresses"] == ["::1"]
    result = ExportResult(
        provider="p",
        vm_name="n",
        vm_id="1",
        format="raw",
        output_path=Path("/srv/out"),
        duration=timedelta(seconds=1.5),
    )
    data = to_dict(result)
    assert data["output_path"] == "/srv/out"
    assert data["duration"] == 1.5
    assert json.loads(json.dumps(data)) == data


def test_secrets_are_masked_unless_revealed() -> None:
    config = ProviderConfig(type="x", password="pw", metadata={"token": "tok", "region": "r"})
    masked = to_dict(config)
    assert masked["password"] == "**********"
    assert masked["metadata"] == {"token": "**********", "region": "r"}
    assert "pw" not in to_json(config)
    revealed = to_dict(config, reveal_secrets=True)
    assert revealed["password"] == "pw"
    assert revealed["metadata"]["token"] == "tok"
    assert from_dict(ProviderConfig, revealed).password == Secret("pw")


@pytest.mark.parametrize("field", ["password", "metadata"])
def test_reading_a_masked_secret_back_is_refused(field: str) -> None:
    config = ProviderConfig(type="x", password="pw", metadata={"token": "tok"})
    data = to_dict(config, reveal_secrets=True)
    if field == "password":
        data["password"] = "**********"
    else:
        data["metadata"]["token"] = "**********"
    with pytest.raises(ConfigurationError, match="masked secret"):
        from_dict(ProviderConfig, data)


def test_from_dict_lists_every_bad_field_with_its_path() -> None:
    data = {
        "provider": "p",
        "id": 7,
        "name": "n",
        "memory_mb": "lots",
        "created_at": "2024-01-01T00:00:00",
        "tags": {"a": 1},
        "colour": "blue",
    }
    with pytest.raises(ConfigurationError) as info:
        from_dict(VMInfo, data)
    message = str(info.value)
    assert message.startswith("VMInfo: 5 invalid fields: ")
    for expected in (
        "$.id",
        "$.memory_mb",
        "$.created_at",
        "no UTC offset",
        "$.tags['a']",
        "colour",
    ):
        assert expected in message
    assert "Traceback" not in message
    assert info.value.__cause__ is None


def test_nested_paths() -> None:
    data = {
        "name": "n",
        "version": "1.0",
        "provider_type": "t",
        "capabilities": {"supported_formats": ["qcow2", 3], "max_vm_size_gb": "big"},
    }
    with pytest.raises(ConfigurationError) as info:
        from_dict(PluginMetadata, data)
    assert "$.capabilities.supported_formats[1]" in str(info.value)
    assert "$.capabilities.max_vm_size_gb" in str(info.value)


def test_missing_required_field() -> None:
    with pytest.raises(ConfigurationError, match=r"required field missing @ \$.format"):
        from_dict(ExportOptions, {"output_path": "out"})


def test_validator_errors_are_reported_too() -> None:
    with pytest.raises(
        ConfigurationError,
        match="VMFilter: 1 invalid field: VMFilter.min_cpus: must be an integer >= 0, got -1",
    ):
        from_dict(VMFilter, {"min_cpus": -1})


@pytest.mark.parametrize("data", [None, [], "text", 42])
def test_non_mapping_input(data: object) -> None:
    with pytest.raises(ConfigurationError, match="ExportCapabilities"):
        from_dict(ExportCapabilities, data)


def test_bools_and_numbers_are_not_coerced() -> None:
    with pytest.raises(ConfigurationError, match=r"\$.insecure"):
        from_dict(ProviderConfig, {"type": "x", "insecure": "false"})
    with pytest.raises(ConfigurationError, match=r"\$.port"):
        from_dict(ProviderConfig, {"type": "x", "port": True})


def test_from_json_rejects_bad_json() -> None:
    with pytest.raises(ConfigurationError, match="VMFilter: not valid JSON"):
        from_json(VMFilter, "{nope")


def test_to_dict_rejects_non_models() -> None:
    with pytest.raises(
        ConfigurationError, match="to_dict: expected a hypersdk model instance, got dict"
    ):
        to_dict({"a": 1})
