"""Bad and hostile input to the models, the serializer and the HTTP helpers.

Each test performs one attack from the hardening issue (#10 there: items 8, 14, 15, 16,
17) and checks that only a hypersdk error comes out, naming the field and never
echoing a secret.
"""

# mypy: disable-error-code="arg-type"
# Hostile input is the point of this file: wrong argument types are passed on purpose.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import hypersdk
from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    ProviderAPIError,
    ProviderConfig,
    Secret,
    VMFilter,
    VMInfo,
    from_dict,
    from_json,
    to_dict,
    to_json,
)
from hypersdk.export import safe_filename

DEEP_JSON = "[" * 200_000 + "]" * 200_000
HUGE_INT = "9" * 5_000  # past Python's 4,300-digit int/str conversion limit
VM = VMInfo(provider="demo", id="1", name="web")


def _deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(depth):
        child: list[Any] = []
        current.append(child)
        current = child
    return root


# -------------------------------------------------------------- item 8: hostile bodies


def _response(status: int, body: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=body.encode(),
        headers={"content-type": "application/json"},
        request=httpx.Request("GET", "https://api.example.test/v1/things?token=SIGNED"),
    )


@pytest.mark.parametrize(
    "body",
    [DEEP_JSON, '{"a": ' + HUGE_INT + "}", '{"message": ' + "[" * 100_000 + "}"],
    ids=["deep", "huge-int", "deep-message"],
)
def test_json_body_maps_hostile_bodies_to_provider_api_error(body: str) -> None:
    with pytest.raises(ProviderAPIError, match="not JSON") as info:
        hypersdk.json_body(_response(200, body), provider="demo", operation="list_vms")
    assert "SIGNED" not in str(info.value)


@pytest.mark.parametrize("body", [DEEP_JSON, '{"message": ' + HUGE_INT + "}"])
def test_raise_for_response_survives_hostile_error_bodies(body: str) -> None:
    with pytest.raises(ProviderAPIError, match="HTTP 400"):
        hypersdk.raise_for_response(_response(400, body), provider="demo", operation="get_vm")


@pytest.mark.parametrize(
    "text",
    [
        DEEP_JSON,
        '{"provider": "demo", "id": "1", "name": "web", "memory_mb": ' + HUGE_INT + "}",
        '{"provider": "demo", "id": "1", "name": "web", "memory_mb": ' + "9" * 30 + "}",
    ],
    ids=["deep", "huge-int", "past-int64"],
)
def test_from_json_maps_hostile_documents_to_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match="VMInfo"):
        from_json(VMInfo, text)


# ------------------------------------------------- item 14: credentials in configs


ENDPOINT = "https://admin:S3cr3tPw@vcenter.example.test/sdk?X-Amz-Signature=SIGVALUE#frag"


def test_endpoint_credentials_and_query_never_shown() -> None:
    config = ProviderConfig(type="vsphere", endpoint=ENDPOINT)
    for text in (repr(config), str(config), json.dumps(to_dict(config)), to_json(config)):
        assert "S3cr3tPw" not in text
        assert "admin" not in text
        assert "SIGVALUE" not in text
        assert "vcenter.example.test/sdk" in text
    assert to_dict(config, reveal_secrets=True)["endpoint"] == ENDPOINT
    # The mask is not a value: reading a masked endpoint back is refused.
    with pytest.raises(ConfigurationError, match="endpoint"):
        from_dict(ProviderConfig, to_dict(config))
    assert from_json(ProviderConfig, to_json(config, reveal_secrets=True)) == config


@pytest.mark.parametrize(
    "key",
    [
        "bearer",
        "sas",
        "azure_sas",
        "sasToken",
        "cookie",
        "session_cookie",
        "signature",
        # Short words in capitals are words too ("X-SAS" once split into "", "" and "").
        "SAS",
        "Azure-SAS",
        "X-Sig",
        "X-Session",
        "sessionId",
    ],
)
def test_secret_looking_metadata_is_masked(key: str) -> None:
    config = ProviderConfig(type="azure", metadata={key: "VALUE-123", "region_hint": "west"})
    for text in (repr(config), to_json(config)):
        assert "VALUE-123" not in text
        assert "west" in text


def test_innocent_words_are_not_masked() -> None:
    config = ProviderConfig(
        type="x", metadata={"kansas": "plain", "passage": "plain", "Signal": "plain"}
    )
    assert "'kansas': 'plain'" in repr(config)
    assert "'Signal': 'plain'" in repr(config)
    assert "'passage': 'plain'" in repr(config)


@pytest.mark.parametrize(
    "fields",
    [
        {"metadata": {"api_token": b"tok-SECRETVALUE"}},
        {"metadata": {"bearer": ["tok-SECRETVALUE"]}},
        {"endpoint": b"https://u:tok-SECRETVALUE@h"},
        {"metadata": "token=tok-SECRETVALUE"},
    ],
)
def test_validation_errors_never_echo_a_secret(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="ProviderConfig") as info:
        ProviderConfig(type="x", **fields)
    assert "SECRETVALUE" not in str(info.value)


# ---------------------------------------------- item 15: no non-hypersdk error escapes


def test_huge_timeout_is_refused_not_an_overflow() -> None:
    for timeout in (2**100, 10**400, 1e300):
        with pytest.raises(ConfigurationError, match="ProviderConfig.timeout"):
            ProviderConfig(type="x", timeout=timeout)
    assert ProviderConfig(type="x", timeout=3600).timeout == 3600


@pytest.mark.parametrize("field", ["memory_mb", "num_cpus", "storage_gb"])
def test_integers_beyond_int64_are_refused(field: str) -> None:
    with pytest.raises(ConfigurationError, match=f"VMInfo.{field}"):
        VMInfo(provider="demo", id="1", name="web", **{field: 2**63})


def test_deeply_nested_values_are_configuration_errors() -> None:
    deep = _deep_list(100_000)
    for fields in ({"tags": {"a": deep}}, {"ip_addresses": deep}, {"metadata": {"k": deep}}):
        with pytest.raises(ConfigurationError, match="VMInfo"):
            VMInfo(provider="demo", id="1", name="web", **fields)
    with pytest.raises(ConfigurationError, match="VMInfo"):
        from_dict(VMInfo, {"provider": "demo", "id": "1", "name": "web", "tags": {"a": deep}})


def test_from_dict_with_non_string_keys() -> None:
    with pytest.raises(ConfigurationError, match="unknown field"):
        from_dict(VMInfo, {1: "a"})
    with pytest.raises(ConfigurationError, match="unknown field"):
        from_dict(VMInfo, {"provider": "d", "id": "1", "name": "n", 1: "a", (2,): "b"})


def test_from_dict_and_from_json_wrong_argument_types() -> None:
    with pytest.raises(ConfigurationError, match="cls"):
        from_dict(5, {})
    with pytest.raises(ConfigurationError, match="str or bytes"):
        from_json(VMInfo, 5)
    with pytest.raises(ConfigurationError, match="indent"):
        to_json(VM, indent=2**100)


def test_secret_with_a_lone_surrogate_compares() -> None:
    assert Secret("\ud800") != Secret("a")
    assert Secret("\ud800") == Secret("\ud800")


@pytest.mark.parametrize("bad", [None, 5, b"web", ["web"]])
def test_safe_filename_wrong_types(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="name"):
        safe_filename(bad)
    with pytest.raises(ConfigurationError, match="suffix"):
        safe_filename("web", suffix=bad)
    with pytest.raises(ConfigurationError, match="max_bytes"):
        safe_filename("web", max_bytes=bad)


@pytest.mark.parametrize("bad", [None, 5, b"web", {"a": 1}])
def test_reference_semantics_wrong_types(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="search_matches"):
        hypersdk.search_matches(bad, "web")
    with pytest.raises(ConfigurationError, match="search_matches"):
        hypersdk.search_matches(VM, bad)
    with pytest.raises(ConfigurationError, match="VMFilter.matches"):
        VMFilter().matches(bad)
    with pytest.raises(ConfigurationError, match="supports_format"):
        ExportCapabilities().supports_format(bad)


def test_export_file_path_checks_before_creating_anything(tmp_path: Path) -> None:
    from hypersdk.export import export_file_path

    target = tmp_path / "new"
    with pytest.raises(ConfigurationError, match="name"):
        export_file_path(target, None, suffix="raw")
    with pytest.raises(ConfigurationError, match="output_path"):
        export_file_path(5, "web", suffix="raw")
    assert not target.exists()


# ----------------------------------- item 16: deserialisation applies the validators


@pytest.mark.parametrize("path", ["", "a\x00b"])
def test_from_json_applies_the_constructor_validators(path: str) -> None:
    with pytest.raises(ConfigurationError, match="output_path"):
        ExportOptions(output_path=path, format="raw")
    document = json.dumps({"output_path": path, "format": "raw"})
    with pytest.raises(ConfigurationError, match="output_path"):
        from_json(ExportOptions, document)
    result = {"provider": "d", "vm_name": "n", "vm_id": "1", "format": "raw"}
    with pytest.raises(ConfigurationError, match="output_path"):
        from_dict(ExportResult, {**result, "output_path": path})


def test_path_objects_with_nul_are_refused_too() -> None:
    with pytest.raises(ConfigurationError, match="ExportOptions.output_path"):
        ExportOptions(output_path=Path("a\x00b"), format="raw")


def test_empty_password_reads_back_as_the_constructor_builds_it() -> None:
    document = {"type": "x", "password": ""}
    assert from_dict(ProviderConfig, document) == ProviderConfig(type="x", password="")
    assert from_dict(ProviderConfig, document).password is None


# ---------------------------------------------------------- item 17: names and errors


def test_safe_filename_never_ends_with_a_space_after_the_reserved_mark() -> None:
    name = safe_filename("CON." + "x" * 194 + " y")
    assert name.startswith("CON_.")
    assert not name.endswith((" ", "."))
    assert len(name.encode()) <= 200
    with_suffix = safe_filename("CON." + "x" * 190 + " y", suffix="qcow2")
    assert not with_suffix.removesuffix(".qcow2").endswith((" ", "."))


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda: VMInfo(provider="d", id="1", name="n", tags=5), "VMInfo.tags"),
        (lambda: VMInfo(provider="d", id="1", name="n", ip_addresses=5), "VMInfo.ip_addresses"),
        (lambda: VMFilter(tags=[1, 2]), "VMFilter.tags"),
        (lambda: ExportCapabilities(supported_formats=5), "ExportCapabilities.supported_formats"),
        (lambda: ExportOptions(output_path=5, format="raw"), "ExportOptions.output_path"),
        (lambda: ProviderConfig(type="x", metadata=5), "ProviderConfig.metadata"),
    ],
)
def test_converter_errors_name_the_class_and_field(build: Any, where: str) -> None:
    with pytest.raises(ConfigurationError, match=where.replace(".", r"\.")):
        build()
