"""export_vm, honestly: snapshot actions, optional shutdown, and the JSON manifest."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import httpx
import pytest
from do_fakes import connected, load

from hypersdk import (
    ConfigurationError,
    ExportError,
    ExportOptions,
    ProviderAPIError,
    RecordingReporter,
    UnsupportedFormatError,
    VMNotFoundError,
)

if TYPE_CHECKING:
    from pathlib import Path

    import respx

DROPLET_ID = "3164444"
SNAPSHOT_NAME = "web-01-1595954862243"  # the name in droplet_snapshots_list.json


class ActionsApi:
    """Droplet actions, their polling, and the droplet's snapshots, as the API serves them.

    ``statuses[type]`` lists the status each poll of that action type returns (the last
    repeats; default: one ``in-progress`` then ``completed``). A completed snapshot action
    adds the fixture snapshot, renamed to the requested name, to the snapshot list, unless
    ``snapshot_appears`` is false. A completed ``shutdown``/``power_off`` turns the droplet
    ``off`` after ``droplet_reads_until_off[type]`` more reads of it (``None``: never, as
    DigitalOcean documents a shutdown may not take); ``power_on`` makes it ``active``.
    """

    def __init__(self, router: respx.MockRouter, droplet: dict[str, Any] | None = None) -> None:
        self.droplet = droplet or load("droplet_get")["droplet"]
        self.statuses: dict[str, list[str]] = {}
        self.snapshot_appears = True
        self.posted: list[dict[str, Any]] = []
        self.polls = 0
        self._actions: dict[int, tuple[str, list[str], str]] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.droplet_reads_until_off: dict[str, int | None] = {"shutdown": 0, "power_off": 0}
        self._off_in: int | None = None
        self.status_at_snapshot: list[str] = []
        droplet_id = self.droplet["id"]
        router.get(f"/droplets/{droplet_id}", name="droplet").mock(side_effect=self.get_droplet)
        router.post(f"/droplets/{droplet_id}/actions", name="actions").mock(side_effect=self.post)
        router.get(path__regex=r"/actions/(?P<action_id>\d+)$", name="poll").mock(
            side_effect=self.poll
        )
        router.get(f"/droplets/{droplet_id}/snapshots", name="snapshots").mock(
            side_effect=lambda _: httpx.Response(
                200, json={"snapshots": self.snapshots, "links": {}, "meta": {"total": 1}}
            )
        )

    def get_droplet(self, request: httpx.Request) -> httpx.Response:
        if self._off_in is not None:
            if self._off_in == 0:
                self.droplet["status"] = "off"
                self._off_in = None
            else:
                self._off_in -= 1
        return httpx.Response(200, json={"droplet": self.droplet})

    def post(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.posted.append(body)
        if body["type"] == "snapshot":
            self.status_at_snapshot.append(self.droplet["status"])
        action = load("droplet_action_snapshot")
        action_id = action["action"]["id"] + len(self.posted) - 1
        action["action"].update(id=action_id, type=body["type"])
        statuses = list(self.statuses.get(body["type"], ["in-progress", "completed"]))
        self._actions[action_id] = (body["type"], statuses, body.get("name", ""))
        return httpx.Response(201, json=action)

    def poll(self, request: httpx.Request, action_id: str) -> httpx.Response:
        self.polls += 1
        kind, statuses, name = self._actions[int(action_id)]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        turns_off = kind in self.droplet_reads_until_off and status == "completed"
        if turns_off and self._off_in is None and self.droplet["status"] != "off":
            self._off_in = self.droplet_reads_until_off[kind]
        if kind == "power_on" and status == "completed":
            self.droplet["status"] = "active"
        if kind == "snapshot" and status == "completed" and self.snapshot_appears:
            snapshot = load("droplet_snapshots_list")["snapshots"][0]
            snapshot["name"] = name
            if snapshot not in self.snapshots:
                self.snapshots.append(snapshot)
        body = load("action_completed")
        body["action"].update(id=int(action_id), type=kind, status=status)
        return httpx.Response(200, json=body)

    @property
    def kinds(self) -> list[str]:
        return [body["type"] for body in self.posted]


@pytest.fixture
def actions(router: respx.MockRouter) -> ActionsApi:
    return ActionsApi(router)


def options(tmp_path: Path, **metadata: str) -> ExportOptions:
    return ExportOptions(
        output_path=tmp_path / "out",
        format="snapshot",
        metadata={"snapshot_name": SNAPSHOT_NAME, **metadata},
    )


@pytest.mark.anyio
async def test_export_writes_a_manifest_of_the_snapshot(
    actions: ActionsApi, tmp_path: Path
) -> None:
    reporter = RecordingReporter()
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path), progress=reporter)
    assert actions.posted == [{"type": "snapshot", "name": SNAPSHOT_NAME}]
    assert result.files == ("example.com.snapshot.json",)
    manifest_path = tmp_path / "out" / result.files[0]
    data = manifest_path.read_bytes()
    assert result.checksum == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)
    assert (result.provider, result.vm_id, result.vm_name) == (
        "digitalocean",
        DROPLET_ID,
        "example.com",
    )
    assert result.format == "snapshot"
    assert result.output_path == tmp_path / "out"
    assert result.metadata["snapshot_id"] == "6372321"
    assert result.metadata["shutdown"] == "none"
    manifest = json.loads(data)
    assert manifest["kind"] == "hypersdk-digitalocean/snapshot-manifest"
    assert manifest["snapshot"] == {
        "id": 6372321,
        "name": SNAPSHOT_NAME,
        "type": "snapshot",
        "size_gigabytes": 2.34,
        "min_disk_size": 25,
        "regions": ["nyc3", "sfo3"],
        "created_at": "2020-07-28T16:47:44Z",
    }
    assert manifest["droplet"]["id"] == 3164444
    assert manifest["droplet"]["size_slug"] == "s-1vcpu-1gb"
    assert manifest["droplet"]["region"] == "nyc3"
    assert manifest["droplet"]["tags"] == ["web", "env:prod"]
    assert manifest["recreate"]["body"]["image"] == 6372321
    assert manifest["recreate"]["body"]["region"] == "nyc3"
    assert manifest["recreate"]["body"]["ipv6"] is True
    assert reporter.percents == sorted(reporter.percents)
    assert reporter.percents[-1] == 100.0
    assert reporter.phases == ["preparing", "snapshotting", "locating", "writing", "done"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [result.files[0]]


@pytest.mark.anyio
async def test_the_default_snapshot_name_is_unique_and_found(
    actions: ActionsApi, tmp_path: Path
) -> None:
    async with connected() as provider:
        result = await provider.export_vm(
            DROPLET_ID, ExportOptions(output_path=tmp_path, format="SNAPSHOT")
        )
    name = actions.posted[0]["name"]
    assert name.startswith("example.com-hypersdk-")
    assert result.metadata["snapshot_name"] == name


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("export_options", "error"),
    [
        ({"format": "qcow2"}, UnsupportedFormatError),
        ({"format": "raw"}, UnsupportedFormatError),
        ({"format": "snapshot", "compress": True}, UnsupportedFormatError),
        ({"format": "snapshot", "metadata": {"shutdown": "maybe"}}, ConfigurationError),
        ({"format": "snapshot", "metadata": {"snapshot_timeout": "-1"}}, ConfigurationError),
    ],
)
async def test_refusals_come_before_any_request_or_file(
    actions: ActionsApi,
    router: respx.MockRouter,
    tmp_path: Path,
    export_options: dict[str, Any],
    error: type[Exception],
) -> None:
    async with connected() as provider:
        with pytest.raises(error):
            await provider.export_vm(
                DROPLET_ID, ExportOptions(output_path=tmp_path / "out", **export_options)
            )
    assert [call.request.url.path for call in router.calls] == ["/v2/account"]
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_an_output_path_that_is_a_file_is_refused_before_any_request(
    actions: ActionsApi, router: respx.MockRouter, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    async with connected() as provider:
        for output_path in (tmp_path / "file", tmp_path / "file" / "below"):
            with pytest.raises(ConfigurationError, match="directory"):
                await provider.export_vm(
                    DROPLET_ID, ExportOptions(output_path=output_path, format="snapshot")
                )
    assert not actions.posted


@pytest.mark.anyio
async def test_unknown_droplet_is_vm_not_found(router: respx.MockRouter, tmp_path: Path) -> None:
    router.get("/droplets/404").respond(404, json=load("error_404"))
    async with connected() as provider:
        with pytest.raises(VMNotFoundError):
            await provider.export_vm("404", options(tmp_path))
        with pytest.raises(VMNotFoundError):
            await provider.export_vm("web-1", options(tmp_path))
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_graceful_shutdown_then_snapshot_then_power_on(
    actions: ActionsApi, tmp_path: Path
) -> None:
    reporter = RecordingReporter()
    async with connected() as provider:
        result = await provider.export_vm(
            DROPLET_ID, options(tmp_path, shutdown="true"), progress=reporter
        )
    assert actions.kinds == ["shutdown", "snapshot", "power_on"]
    assert result.metadata["shutdown"] == "shutdown"
    assert reporter.phases[:2] == ["preparing", "shutting down"]
    assert reporter.percents == sorted(reporter.percents)


@pytest.mark.anyio
@pytest.mark.parametrize(("statuses", "timeout"), [(["errored"], "10"), (["in-progress"], "0.05")])
async def test_power_off_when_shutdown_fails_or_times_out(
    actions: ActionsApi,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    statuses: list[str],
    timeout: str,
) -> None:
    actions.statuses["shutdown"] = statuses
    async with connected() as provider:
        result = await provider.export_vm(
            DROPLET_ID, options(tmp_path, shutdown="yes", shutdown_timeout=timeout)
        )
    assert actions.kinds == ["shutdown", "power_off", "snapshot", "power_on"]
    assert result.metadata["shutdown"] == "power_off"
    assert "forcing power_off" in caplog.text


@pytest.mark.anyio
async def test_a_completed_shutdown_is_trusted_only_once_the_droplet_is_off(
    actions: ActionsApi, tmp_path: Path
) -> None:
    actions.droplet_reads_until_off["shutdown"] = 2  # off on the third look
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path, shutdown="true"))
    assert actions.kinds == ["shutdown", "snapshot", "power_on"]
    assert actions.status_at_snapshot == ["off"]
    assert result.metadata["shutdown"] == "shutdown"


@pytest.mark.anyio
async def test_a_shutdown_that_completes_but_leaves_the_droplet_on_falls_back_to_power_off(
    actions: ActionsApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # DigitalOcean: a shutdown "guarantees that the command is issued, not that it succeeds".
    actions.droplet_reads_until_off["shutdown"] = None
    async with connected() as provider:
        result = await provider.export_vm(
            DROPLET_ID, options(tmp_path, shutdown="true", shutdown_timeout="0.2")
        )
    assert actions.kinds == ["shutdown", "power_off", "snapshot", "power_on"]
    assert actions.status_at_snapshot == ["off"]
    assert result.metadata["shutdown"] == "power_off"
    manifest = json.loads((result.output_path / result.files[0]).read_text(encoding="utf-8"))
    assert manifest["shutdown"] == "power_off"
    assert manifest["droplet_status_at_snapshot"] == "off"
    assert "still active" in caplog.text


@pytest.mark.anyio
async def test_a_droplet_that_stays_on_even_after_power_off_is_not_snapshotted(
    actions: ActionsApi, tmp_path: Path
) -> None:
    actions.droplet_reads_until_off = {"shutdown": None, "power_off": None}
    async with connected() as provider:
        with pytest.raises(ExportError, match="still active"):
            await provider.export_vm(
                DROPLET_ID, options(tmp_path, shutdown="true", shutdown_timeout="0.1")
            )
    assert "snapshot" not in actions.kinds
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_power_on_after_can_be_declined_and_off_droplets_are_left_alone(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    actions = ActionsApi(router)
    async with connected() as provider:
        await provider.export_vm(
            DROPLET_ID, options(tmp_path, shutdown="true", power_on_after="false")
        )
        assert actions.kinds == ["shutdown", "snapshot"]
        actions.posted.clear()
        actions.droplet["status"] = "off"
        result = await provider.export_vm(DROPLET_ID, options(tmp_path, shutdown="true"))
    assert actions.kinds == ["snapshot"]
    assert result.metadata["shutdown"] == "already-off"


@pytest.mark.anyio
async def test_an_errored_snapshot_fails_without_files_and_powers_back_on(
    actions: ActionsApi, tmp_path: Path
) -> None:
    actions.statuses["snapshot"] = ["in-progress", "errored"]
    async with connected() as provider:
        with pytest.raises(ExportError, match="errored"):
            await provider.export_vm(DROPLET_ID, options(tmp_path, shutdown="true"))
    assert actions.kinds == ["shutdown", "snapshot", "power_on"]
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_a_snapshot_that_never_finishes_times_out(
    actions: ActionsApi, tmp_path: Path
) -> None:
    actions.statuses["snapshot"] = ["in-progress"]
    async with connected() as provider:
        with pytest.raises(ExportError, match=r"did not finish within 0\.05 s"):
            await provider.export_vm(DROPLET_ID, options(tmp_path, snapshot_timeout="0.05"))
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_a_snapshot_that_is_listed_a_moment_late_is_found(
    actions: ActionsApi, router: respx.MockRouter, tmp_path: Path
) -> None:
    looks: list[int] = []

    def late(request: httpx.Request) -> httpx.Response:
        looks.append(1)
        listed = actions.snapshots if len(looks) > 1 else []
        return httpx.Response(200, json={"snapshots": listed, "links": {}, "meta": {}})

    router["snapshots"].mock(side_effect=late)
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert result.metadata["snapshot_id"] == "6372321"
    assert len(looks) == 2


@pytest.mark.anyio
async def test_an_empty_snapshot_list_without_snapshots_is_empty_not_an_error(
    actions: ActionsApi, router: respx.MockRouter, tmp_path: Path
) -> None:
    # Issue 16, item 4: the specification requires only `meta` of a list response.
    looks: list[int] = []

    def late(request: httpx.Request) -> httpx.Response:
        looks.append(1)
        if len(looks) == 1:
            return httpx.Response(200, json={"meta": {"total": 0}})
        return httpx.Response(200, json={"snapshots": actions.snapshots, "meta": {"total": 1}})

    router["snapshots"].mock(side_effect=late)
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert result.metadata["snapshot_id"] == "6372321"
    assert len(looks) == 2


@pytest.mark.anyio
async def test_a_snapshot_list_of_another_shape_is_a_provider_api_error(
    actions: ActionsApi, router: respx.MockRouter, tmp_path: Path
) -> None:
    router["snapshots"].respond(200, json={"unexpected": {"shape": True}})
    async with connected() as provider:
        with pytest.raises(ProviderAPIError, match="snapshots"):
            await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_a_snapshot_that_cannot_be_found_is_an_export_error(
    actions: ActionsApi, router: respx.MockRouter, tmp_path: Path
) -> None:
    actions.snapshot_appears = False
    async with connected() as provider:
        with pytest.raises(ExportError, match=f"no snapshot named '{SNAPSHOT_NAME}'"):
            await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert not (tmp_path / "out").exists()
    assert router["snapshots"].call_count == 3


@pytest.mark.anyio
async def test_cancellation_while_the_action_runs_is_reported_and_leaves_no_files(
    actions: ActionsApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    actions.statuses["snapshot"] = ["in-progress"]
    reporter = RecordingReporter()
    async with connected(poll_interval="0.01") as provider:
        with anyio.move_on_after(0.1) as scope:
            await provider.export_vm(
                DROPLET_ID, options(tmp_path, shutdown="true"), progress=reporter
            )
    assert scope.cancelled_caught
    assert actions.polls > 1
    assert actions.kinds == ["shutdown", "snapshot", "power_on"]
    assert reporter.events[-1].phase == "cancelled"
    assert "36804759" in reporter.events[-1].message  # the snapshot action's id
    assert any(
        record.levelno == logging.WARNING and "cancelled while snapshot action" in record.message
        for record in caplog.records
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.anyio
async def test_cancellation_while_writing_leaves_no_files(
    actions: ActionsApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypersdk_digitalocean import _export
    from hypersdk_digitalocean._manifest import write_manifest as original

    written: list[Path] = []

    def write_then_get_cancelled(*args: Any) -> Path:
        path = original(*args)
        written.append(path)
        # The caller gives up while the file is being written (this runs in a worker thread).
        anyio.from_thread.run_sync(scope.cancel)
        return path

    monkeypatch.setattr(_export, "write_manifest", write_then_get_cancelled)
    async with connected() as provider:
        with anyio.CancelScope() as scope:
            await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert scope.cancelled_caught
    assert written
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "_.._etc_passwd.snapshot.json"),
        ("/abs/path", "_abs_path.snapshot.json"),
        ("..", "vm.snapshot.json"),
        ("web\x00\n01", "web__01.snapshot.json"),
        ("CON", "CON_.snapshot.json"),
    ],
)
async def test_hostile_droplet_names_stay_inside_output_path(
    actions: ActionsApi, tmp_path: Path, name: str, expected: str
) -> None:
    actions.droplet["name"] = name
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert result.files == (expected,)
    assert [path.name for path in (tmp_path / "out").iterdir()] == [expected]


@pytest.mark.anyio
async def test_an_existing_manifest_is_never_replaced(actions: ActionsApi, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "example.com.snapshot.json").write_text("keep me")
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert result.files == ("example.com-1.snapshot.json",)
    assert (tmp_path / "out" / "example.com.snapshot.json").read_text() == "keep me"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "example.com-1.snapshot.json",
        "example.com.snapshot.json",
    ]


@pytest.mark.anyio
async def test_a_5xx_on_the_snapshot_action_is_not_retried(
    actions: ActionsApi, router: respx.MockRouter, tmp_path: Path
) -> None:
    router["actions"].mock(
        side_effect=None, return_value=httpx.Response(500, json=load("error_500"))
    )
    async with connected() as provider:
        with pytest.raises(Exception, match="Unexpected server-side error"):
            await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert router["actions"].call_count == 1


@pytest.mark.anyio
async def test_without_hard_links_the_manifest_is_renamed_into_place(
    actions: ActionsApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, destination: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    async with connected() as provider:
        result = await provider.export_vm(DROPLET_ID, options(tmp_path))
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["example.com.snapshot.json"]
    data = (tmp_path / "out" / result.files[0]).read_bytes()
    assert result.checksum == hashlib.sha256(data).hexdigest()


@pytest.mark.anyio
async def test_a_full_disk_is_an_export_error_without_files(
    actions: ActionsApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle: int, mode: str) -> None:
            self.stream = real_fdopen(handle, mode)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", FullDisk)
    async with connected() as provider:
        with pytest.raises(ExportError, match="No space left on device"):
            await provider.export_vm(DROPLET_ID, options(tmp_path, shutdown="true"))
    assert actions.kinds == ["shutdown", "snapshot", "power_on"]
    assert list((tmp_path / "out").iterdir()) == []
