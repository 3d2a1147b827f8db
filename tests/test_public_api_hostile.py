"""Only hypersdk errors escape the public API, whatever it is handed (issue #10).

For every public model constructor and public function named in ``hypersdk.__all__``
and ``hypersdk.export.__all__`` (and the methods of the models and the registry), one
argument at a time is replaced by a hostile value — None, huge and negative integers,
NaN and infinities, bytes, lone surrogates, NUL, deep nesting, a megabyte string, the
wrong container — while the others keep a plausible value. Returning is fine; raising
anything but a :class:`~hypersdk.HyperSDKError` subclass is a defect.

Cases that still fail in code other engineers own are marked ``xfail(strict=False)``
with the owner area in the reason, so the lead can remove the mark once they merge.
"""

# mypy: disable-error-code="arg-type"

from __future__ import annotations

import contextlib
import enum
import inspect
import tempfile
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import hypersdk
import hypersdk.export
from hypersdk import HyperSDKError


def _deep(depth: int, *, mapping: bool = False) -> object:
    root: Any = {} if mapping else []
    current = root
    for _ in range(depth):
        child: Any = {} if mapping else []
        if mapping:
            current["k"] = child
        else:
            current.append(child)
        current = child
    return root


class _Hostile:
    """An object whose every dunder a careless implementation might call raises."""

    def __repr__(self) -> str:
        return "<hostile>"  # Hypothesis must be able to print the failing example

    def __str__(self) -> str:
        raise RuntimeError("str of a hostile object")

    def __iter__(self) -> Any:
        raise RuntimeError("iterating a hostile object")

    def __fspath__(self) -> str:
        raise RuntimeError("fspath of a hostile object")


# No small non-negative integers and no bools: open(1) is a file descriptor, and reading
# stdin or stdout would hang the test rather than show a defect.
HOSTILE: tuple[object, ...] = (
    None,
    -1,
    -(2**63),
    2**64,
    10**5000,  # more digits than int -> str allows
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    b"\xff\x00bytes",
    bytearray(b"x"),
    "\ud800",
    "a\x00b",
    "x" * 1_000_000,
    "",
    _deep(50_000),
    _deep(50_000, mapping=True),
    {1, 2},
    (1, 2),
    {1: 2},
    {"k": None},
    [None],
    object(),
    _Hostile(),
)

_WORK = Path(tempfile.mkdtemp(prefix="hypersdk-hostile-"))
_FILE = _WORK / "disk.raw"
_FILE.write_bytes(b"\x00" * 1024)
VM = hypersdk.VMInfo(provider="demo", id="1", name="web")

# A plausible value for each parameter and field name the public API uses.
BASELINE: dict[str, object] = {
    "provider": "demo",
    "provider_type": "demo",
    "type": "demo",
    "id": "1",
    "name": "web",
    "vm_name": "web",
    "vm_id": "1",
    "format": "raw",
    "version": "1.0",
    "output_path": str(_WORK / "out"),
    "vm": VM,
    "query": "web",
    "cls": hypersdk.VMInfo,
    "data": {"provider": "demo", "id": "1", "name": "web"},
    "model": VM,
    "text": '{"provider": "demo", "id": "1", "name": "web"}',
    "value": "x",
    "suffix": "raw",
    "max_bytes": 200,
    "algorithm": "zstd",
    "level": 0,
    "header": b"\x00" * 512,
    "path": str(_FILE),
    "source": str(_FILE),
    "destination": str(_WORK / "out" / "copy.raw"),
    "expected": "raw",
    "files": ["disk.raw"],
    "duration": 0.0,
    "url": "http://127.0.0.1:9/disk.raw",
    "client": None,  # never a real client: no hostile case may reach the network
    "options": hypersdk.ExportOptions(output_path=str(_WORK / "out"), format="raw"),
    "response": httpx.Response(200, json={"ok": True}, request=httpx.Request("GET", "https://h/x")),
    "exc": httpx.ConnectError("refused", request=httpx.Request("GET", "https://h/x")),
    "operation": "list_vms",
    "identifier": "1",
    "provider_type_or_name": "demo",
    "factory": lambda config: None,
    "phase": "downloading",
    "percent": 1.0,
    "message": "m",
    "key": "token",
    "kind": "file",
    "status": "loaded",
    "source_kind": "file",
}


def _registry() -> hypersdk.Registry:
    registry = hypersdk.Registry()
    registry.register("demo", lambda config: None)  # type: ignore[return-value]
    return registry


# (label, callable, the parameters it takes). Methods are bound to a fresh instance.
def _targets() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for module in (hypersdk, hypersdk.export):
        for name in module.__all__:
            target = getattr(module, name)
            if not callable(target) or name in _NOT_CALLED:
                continue
            if isinstance(target, type) and (
                issubclass(target, BaseException | enum.Enum)
                or inspect.isabstract(target)
                or getattr(target, "_is_protocol", False)
            ):
                continue
            found.append((f"{module.__name__}.{name}", target))
    config = hypersdk.ProviderConfig(type="demo")
    registry = _registry()
    found += [
        ("VMFilter.matches", hypersdk.VMFilter().matches),
        ("ExportCapabilities.supports_format", hypersdk.ExportCapabilities().supports_format),
        ("ProviderConfig.secret", config.secret),
        ("Registry.register", hypersdk.Registry().register),
        ("Registry.unregister", registry.unregister),
        ("Registry.is_registered", registry.is_registered),
        ("Registry.create", registry.create),
        ("Registry.get_capabilities", registry.get_capabilities),
        ("RecordingReporter.update", hypersdk.RecordingReporter().update),
    ]
    return found


# Not functions a user calls with data: type aliases, NewType, and no-argument helpers
# whose behaviour depends on the calling task (covered in test_providers.py).
_NOT_CALLED = frozenset(
    {"ProviderType", "ProviderFactory", "check_cancelled", "time_remaining", "__version__"}
)

# Still failing in code another engineer owns this round; the lead removes the mark
# after merging their branch. Reason = the owner area.
_OWNERS: dict[str, str] = {
    "hypersdk.error_for_response": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.raise_for_response": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.json_body": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.error_for_exception": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.parse_retry_after": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.error_for_status": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.raise_for_status": "hypersdk.http (the public HTTP helpers module)",
    "hypersdk.PluginManager": "hypersdk.plugins (plugin manager argument validation)",
    "hypersdk.PluginConfig": "hypersdk.plugins (PluginConfig argument validation)",
    "hypersdk.export.export_disk_image": "hypersdk.export (export toolkit argument checks)",
    "hypersdk.export.download": "hypersdk.export (download argument checks)",
    "hypersdk.export.compress_file": "hypersdk.export (compress_file argument checks)",
    "hypersdk.export.compression_level": "hypersdk.export (compression argument checks)",
    "hypersdk.export.compression_suffix": "hypersdk.export (compression argument checks)",
    "hypersdk.export.detect_format": "hypersdk.export (format detection argument checks)",
    "hypersdk.export.detect_file_format": "hypersdk.export (format detection argument checks)",
    "hypersdk.export.check_file_format": "hypersdk.export (format detection argument checks)",
    "hypersdk.export.ProgressTracker": "hypersdk.export (ProgressTracker argument checks)",
    "hypersdk.export.build_export_result": "hypersdk.export (build_export_result checks)",
    "hypersdk.export.sha256_file": "hypersdk.export (sha256_file argument checks)",
    "hypersdk.export.compress_file_blocking": "hypersdk.export (reprs in argument errors)",
    "hypersdk.export.UrllibSource": "hypersdk.export (reprs in argument errors)",
    "hypersdk.export.download_blocking": "hypersdk.export (reprs in argument errors)",
    "hypersdk.export.export_disk_image_blocking": "hypersdk.export (reprs in argument errors)",
    "hypersdk.export.SourceResponse": "hypersdk.export (reprs in argument errors)",
}


def _parameters(target: Any) -> list[inspect.Parameter]:
    if isinstance(target, type) and attrs.has(target):
        return [
            inspect.Parameter(
                field.alias or field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty
                if field.default is attrs.NOTHING
                else field.default,
            )
            for field in attrs.fields(target)
            if field.init
        ]
    return [
        parameter
        for parameter in inspect.signature(target).parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def _call(
    target: Any, parameters: list[inspect.Parameter], hostile_name: str, value: object
) -> None:
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for parameter in parameters:
        if parameter.name == hostile_name:
            given_value = value
        elif parameter.name in BASELINE:
            given_value = BASELINE[parameter.name]
        elif parameter.default is not parameter.empty:
            continue
        else:
            given_value = "x"
        if parameter.kind is parameter.POSITIONAL_ONLY:
            args.append(given_value)
        else:
            kwargs[parameter.name] = given_value
    result = target(*args, **kwargs)
    if inspect.iscoroutine(result):

        async def finish() -> None:
            with anyio.fail_after(10):
                await result

        anyio.run(finish)


TARGETS = _targets()


def _case(label: str, target: Any) -> Any:
    marks = []
    if label in _OWNERS:
        marks.append(pytest.mark.xfail(strict=False, reason=f"owned by {_OWNERS[label]}"))
    return pytest.param(target, id=label, marks=marks)


def test_every_public_name_is_covered() -> None:
    labels = {label for label, _ in TARGETS}
    assert "hypersdk.VMInfo" in labels
    assert "hypersdk.export.safe_filename" in labels
    assert len(labels) >= 40


@pytest.mark.parametrize("target", [_case(label, target) for label, target in TARGETS])
@settings(
    max_examples=25,
    # The same examples every run: CI must not pass or fail by the luck of the draw.
    derandomize=True,
    deadline=None,
    database=None,
    # No shrinking: the message names the argument and the value's type, which is all
    # a fix needs, and shrinking the expected failures would cost most of the run.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_only_hypersdk_errors_escape(target: Any, data: st.DataObject) -> None:
    parameters = _parameters(target)
    if not parameters:
        target()
        return
    name = data.draw(st.sampled_from([parameter.name for parameter in parameters]), "argument")
    index = data.draw(st.integers(0, len(HOSTILE) - 1), "hostile value index")
    value = (
        HOSTILE[index]
        if data.draw(st.booleans(), "from the table")
        else data.draw(st.text(max_size=20) | st.integers(-(10**30), -1), "value")
    )
    with contextlib.chdir(_WORK):
        try:
            _call(target, parameters, name, value)
        except HyperSDKError:
            pass
        except Exception as exc:
            shown = type(value).__name__
            pytest.fail(
                f"{name}={shown}: {type(exc).__name__} escaped: {str(exc)[:200]}", pytrace=False
            )
    assert not any(_WORK.rglob("*.part")), "a part file was left behind"
