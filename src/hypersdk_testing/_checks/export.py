"""EXPORT-*: exports write what they claim, only where they may, and clean up after themselves."""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import itertools
import lzma
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest

from hypersdk import (
    ExportOptions,
    ExportResult,
    HyperSDKError,
    RecordingReporter,
    UnsupportedFormatError,
)
from hypersdk._codecs import CODECS
from hypersdk_testing._checks._registry import implements
from hypersdk_testing._fakecloud import Fault
from hypersdk_testing._harness import describe_error
from hypersdk_testing._world import PLAIN_NAMES
from hypersdk_testing.strategies import HOSTILE_NAMES

if TYPE_CHECKING:
    from hypersdk import ProgressReporter, VMInfo
    from hypersdk_testing._harness import Harness, Session

_CANDIDATE_UNSUPPORTED = ("vmdk", "qcow2", "vhdx", "ova", "raw", "vhd")
# Contract 2: a disk larger than common read sizes and not a multiple of any of them, so
# a download takes many chunks for any reader and the last one is short.
_LARGE_DISK: Final = 3 * 1024 * 1024 + 12345


def _files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file() or path.is_symlink())


async def _export(
    h: Harness,
    session: Session,
    vm: VMInfo,
    options: ExportOptions,
    progress: ProgressReporter | None = None,
) -> ExportResult:
    try:
        result = await session.provider.export_vm(vm.id, options, progress=progress)
    except Exception as exc:
        h.fail(
            expected=f"export_vm({vm.id!r}, format={options.format!r}) to succeed",
            actual=f"it raised {describe_error(exc)}",
        )
    if not isinstance(result, ExportResult):
        h.fail(expected="an ExportResult", actual=f"{type(result).__name__}")
    return result


def _disk_size(h: Harness) -> int | None:
    """The large disk from contract 2 on; contract 1's default for a plugin pinned to it."""
    return _LARGE_DISK if h.contract >= 2 else None


def _placement_problems(result: ExportResult, options: ExportOptions) -> list[str]:
    """Contract 2: ``output_path`` is the directory asked for, ``files`` names relative to it."""
    problems = []
    if Path(result.output_path).resolve() != options.output_path.resolve():
        problems.append(
            f"output_path {str(result.output_path)!r}, expected options.output_path "
            f"{str(options.output_path)!r}"
        )
    absolute = [name for name in result.files if Path(name).is_absolute()]
    if absolute:
        problems.append(f"files {absolute!r} are absolute; list names relative to output_path")
    return problems


def _is_disk_format(h: Harness, fmt: str) -> bool:
    return fmt.casefold() in {name.casefold() for name in h.suite.disk_image_formats}


def _result_problems(
    h: Harness, session: Session, result: ExportResult, vm: VMInfo, options: ExportOptions
) -> list[str]:
    problems = []
    if result.vm_id != vm.id or result.vm_name != vm.name:
        problems.append(
            f"vm id/name {result.vm_id!r}/{result.vm_name!r}, expected {vm.id!r}/{vm.name!r}"
        )
    if result.format.casefold() != options.format.casefold():
        problems.append(f"format {result.format!r}, expected {options.format!r}")
    if result.provider != h.provider_type:
        problems.append(f"provider {result.provider!r}, expected {h.provider_type!r}")
    if not result.files:
        problems.append("files is empty; list the main file first")
        return problems
    root = options.output_path.resolve()
    for name in result.files:
        if Path(name).is_absolute():
            continue  # _placement_problems says so
        path = (options.output_path / name).resolve()
        if not path.is_relative_to(root):
            problems.append(f"file {name!r} lies outside output_path")
        elif not path.is_file():
            problems.append(f"file {name!r} does not exist")
    main = options.output_path / result.files[0]
    if main.is_file():
        data = main.read_bytes()
        if result.checksum != hashlib.sha256(data).hexdigest():
            problems.append(
                f"checksum {result.checksum!r} is not the SHA-256 of {result.files[0]!r} "
                f"({hashlib.sha256(data).hexdigest()})"
            )
        if options.compress:
            if result.compressed_size != len(data):
                problems.append(
                    f"compressed_size {result.compressed_size}, but the file has {len(data)} bytes"
                )
        elif result.size != len(data):
            problems.append(f"size {result.size}, but {result.files[0]!r} has {len(data)} bytes")
        if (
            not options.compress
            and _is_disk_format(h, result.format)
            and data != session.cloud.disks[vm.id]
        ):
            problems.append(f"{result.files[0]!r} is not the VM's disk image byte for byte")
    return problems


@implements("EXPORT-RESULT")
def export_result(h: Harness) -> None:
    world = h.world(2)

    async def body() -> None:
        for index, fmt in enumerate(h.capabilities.supported_formats):
            async with h.session(world, disk_size=_disk_size(h)) as session:
                vm = session.cloud.vms[0]
                out = h.tmp_path / f"format-{index}" / "out"
                options = ExportOptions(output_path=out, format=fmt)
                result = await _export(h, session, vm, options)
                problems = _result_problems(h, session, result, vm, options)
                if problems:
                    h.fail(
                        expected=f"an ExportResult that matches the {fmt} files written",
                        actual="\n  - " + "\n  - ".join(problems),
                    )
                placement = _placement_problems(result, options)
                if placement:
                    h.fail(
                        expected=f"an ExportResult whose output_path and files are where "
                        f"the {fmt} export was asked to write",
                        actual="\n  - " + "\n  - ".join(placement),
                        since=2,
                    )

    h.run(body)


@implements("EXPORT-UNSUPPORTED")
def export_unsupported(h: Harness) -> None:
    caps = h.capabilities
    fmt = next(
        (f for f in _CANDIDATE_UNSUPPORTED if not caps.supports_format(f)), "hypersdk-unknown"
    )

    async def body() -> None:
        async with h.session(h.world(2)) as session:
            vm = session.cloud.vms[0]
            out = h.tmp_path / "out"
            before = len(session.exchange())
            try:
                await session.provider.export_vm(vm.id, ExportOptions(output_path=out, format=fmt))
            except UnsupportedFormatError:
                pass
            except Exception as exc:
                h.fail(
                    expected=f"UnsupportedFormatError for format {fmt!r}",
                    actual=describe_error(exc),
                )
            else:
                h.fail(
                    expected=f"UnsupportedFormatError for format {fmt!r}",
                    actual="the export succeeded",
                )
            writes = [
                f"{request.method} {request.url.path}"
                for request, _ in session.exchange()[before:]
                if request.method not in ("GET", "HEAD", "OPTIONS")
            ]
            leftovers = _files_under(out) if out.exists() else []
            if session.cloud.mutations or writes or leftovers:
                h.fail(
                    expected="no API mutation and no file before UnsupportedFormatError",
                    actual=f"mutations {[m.kind for m in session.cloud.mutations]}, "
                    f"write requests {writes}, files {[str(p) for p in leftovers]}",
                )

    h.run(body)


@implements("EXPORT-CONFINED")
def export_confined(h: Harness) -> None:
    fmt = h.capabilities.supported_formats[0]
    # The standard world names its first VMs plainly, then uses every hostile name.
    world = h.world(len(PLAIN_NAMES) + len(HOSTILE_NAMES))[len(PLAIN_NAMES) :]

    async def body() -> None:
        base = h.tmp_path / "base"
        out = base / "inner" / "out"
        async with h.session(world) as session:
            for vm in session.cloud.vms:
                try:
                    await session.provider.export_vm(
                        vm.id, ExportOptions(output_path=out, format=fmt)
                    )
                except HyperSDKError:
                    pass  # refusing a name is allowed; writing outside is not
                except Exception as exc:
                    h.fail(
                        expected=f"the export of a VM named {vm.name!r} to stay inside output_path",
                        actual=f"it raised {describe_error(exc)}",
                    )
                outside = [path for path in _files_under(base) if not path.is_relative_to(out)]
                if outside:
                    h.fail(
                        expected=f"every file of the export of VM {vm.name!r} inside {out}",
                        actual=f"written outside: {[str(p) for p in outside]}",
                    )

    h.run(body)


def _progress_problems(percents: list[float]) -> list[str]:
    problems = []
    if not percents:
        problems.append("no progress was reported")
    else:
        outside = [p for p in percents if not 0 <= p <= 100]
        if outside:
            problems.append(f"values outside [0, 100]: {outside[:5]}")
        drops = [(a, b) for a, b in itertools.pairwise(percents) if b < a]
        if drops:
            problems.append(f"it went down: {drops[:3]}")
        if percents[-1] != 100:
            problems.append(f"the last value is {percents[-1]}, not 100")
    return problems


def _sequence(percents: list[float]) -> str:
    return f" (sequence: {percents[:12]}{' ...' if len(percents) > 12 else ''})"


@implements("EXPORT-PROGRESS")
def export_progress(h: Harness) -> None:
    fmt = h.capabilities.supported_formats[0]

    async def body() -> None:
        # Contract 1's disk, then (contract 2) one of many chunks for any reader.
        for disk_size, since in ((None, 1), (_LARGE_DISK, 2)):
            async with h.session(h.world(2), disk_size=disk_size) as session:
                reporter = RecordingReporter()
                vm = session.cloud.vms[0]
                out = h.tmp_path / f"out-{since}"
                await _export(h, session, vm, ExportOptions(output_path=out, format=fmt), reporter)
                percents = reporter.percents
                problems = _progress_problems(percents)
                if problems:
                    h.fail(
                        expected="percents within [0, 100], non-decreasing, ending at 100",
                        actual="; ".join(problems) + _sequence(percents),
                        context=None
                        if since == 1
                        else f"a disk of {_LARGE_DISK} bytes (3 MiB + 12345, many chunks)",
                        since=since,
                    )
        # Contract 2: across a download that drops twice and is resumed (or restarted).
        async with h.session(h.world(2)) as session:
            reporter = RecordingReporter()
            vm = session.cloud.vms[0]
            session.cloud.inject(Fault.reset_mid_body(), times=2)
            options = ExportOptions(output_path=h.tmp_path / "dropped", format=fmt)
            try:
                await session.provider.export_vm(vm.id, options, progress=reporter)
            except HyperSDKError:
                return  # not resuming is EXPORT-RESUME's business
            percents = reporter.percents
            problems = _progress_problems(percents)
            if problems:
                h.fail(
                    expected="percents within [0, 100], non-decreasing, ending at 100, also "
                    "when the download drops and is resumed or retried",
                    actual="; ".join(problems) + _sequence(percents),
                    context="the disk download was cut half way, twice",
                    since=2,
                )

    h.run(body)


class _Canceller:
    """Cancels a scope from any thread: the event loop's, a worker's, or the socket path's.

    Made on the event loop; a call from another thread goes back to that loop through
    its token (the socket path's connection threads are not anyio worker threads).
    """

    def __init__(self, scope: anyio.CancelScope) -> None:
        self.scope = scope
        self.fired = False
        self._lock = threading.Lock()
        self._loop_thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()

    def __call__(self) -> None:
        with self._lock:
            if self.fired:
                return
            self.fired = True
        if threading.get_ident() == self._loop_thread:
            self.scope.cancel()
            return
        with contextlib.suppress(RuntimeError):  # the loop already finished: nothing to cancel
            anyio.from_thread.run_sync(self.scope.cancel, token=self._token)


class _CancellingReporter:
    def __init__(self, canceller: _Canceller, *, enabled: bool) -> None:
        self.canceller = canceller
        self.enabled = enabled

    def update(self, phase: str, percent: float, message: str) -> None:
        if self.enabled and 0 < percent < 100:
            self.canceller()


def _check_leftovers(
    h: Harness, out: Path, temp: Path, session: Session, how: str, *, since: int
) -> None:
    """Nothing of the export left in output_path's parent, the temp dir, or the cloud."""
    left = _files_under(out.parent) if out.parent.exists() else []
    if left:
        h.fail(
            expected=f"no file left after the export {how}",
            actual=f"left behind: {[str(p.relative_to(out.parent)) for p in left]}",
            since=since,
        )
    stray = _files_under(temp)
    if stray:
        h.fail(
            expected=f"no file left in the system temp dir after the export {how}",
            actual=f"left behind: {[str(p.relative_to(temp)) for p in stray]}",
            context="tempfile's directory pointed at a private one for the check",
            since=2,
        )
    logged = " ".join(text for record, text in h.logs.texts() if record.levelno >= 30)
    undone = [m for m in session.cloud.leftovers() if str(m.details.get("id")) not in logged]
    if undone:
        h.fail(
            expected=f"every provider-side change undone (or logged at WARNING) after "
            f"the export {how}",
            actual="left behind: " + ", ".join(f"{m.kind} {dict(m.details)}" for m in undone),
            since=since,
        )


@implements("EXPORT-CANCEL")
def export_cancel(h: Harness) -> None:
    fmt = h.capabilities.supported_formats[0]

    async def attempt(on_progress: bool) -> bool:
        out = h.tmp_path / ("by-progress" if on_progress else "by-download") / "out"
        with h.private_tempdir() as temp:
            async with h.session(h.world(2)) as session:
                vm = session.cloud.vms[0]
                with anyio.CancelScope() as scope:
                    canceller = _Canceller(scope)
                    session.cloud.on_disk_chunk = None if on_progress else canceller
                    reporter = _CancellingReporter(canceller, enabled=on_progress)
                    try:
                        await session.provider.export_vm(
                            vm.id, ExportOptions(output_path=out, format=fmt), progress=reporter
                        )
                    except HyperSDKError:
                        pass
                    except Exception as exc:
                        h.fail(
                            expected="cancellation or a HyperSDKError", actual=describe_error(exc)
                        )
                session.cloud.on_disk_chunk = None
                if not canceller.fired:
                    return False
                _check_leftovers(
                    h,
                    out,
                    temp,
                    session,
                    "was cancelled "
                    + (
                        "at the first progress update between 0 and 100"
                        if on_progress
                        else "after the first chunk of the disk download"
                    ),
                    since=1,
                )
                return True

    async def failure() -> None:
        """Contract 2: an export that fails for good (every download drops) cleans up too."""
        out = h.tmp_path / "failed" / "out"
        with h.private_tempdir() as temp:
            async with h.session(h.world(2)) as session:
                vm = session.cloud.vms[0]
                session.cloud.inject(Fault.reset_mid_body(), times=None)
                try:
                    with anyio.move_on_after(h.suite.retry_budget):
                        await session.provider.export_vm(
                            vm.id, ExportOptions(output_path=out, format=fmt)
                        )
                except HyperSDKError:
                    pass
                except Exception as exc:
                    h.fail(
                        expected="a HyperSDKError when every disk download drops half way",
                        actual=describe_error(exc),
                        since=2,
                    )
                session.cloud.clear_faults()
                if session.cloud.disk_requests:
                    _check_leftovers(
                        h, out, temp, session, "failed (every disk download dropped)", since=2
                    )

    async def body() -> None:
        fired = await attempt(on_progress=False)
        if not fired:
            fired = await attempt(on_progress=True)
        if not fired:
            h.fail(
                expected="an export that downloads a disk or reports progress between 0 and "
                "100, so it can be cancelled mid-way",
                actual="neither happened",
            )
        await failure()

    h.run(body)


@implements("EXPORT-RESUME")
def export_resume(h: Harness) -> None:
    fmt = h.capabilities.supported_formats[0]

    async def body() -> None:
        async with h.session(h.world(2), disk_size=_disk_size(h)) as session:
            vm = session.cloud.vms[0]
            session.cloud.inject(Fault.reset_mid_body())
            options = ExportOptions(output_path=h.tmp_path / "out", format=fmt)
            result = await _export(h, session, vm, options)
            if session.cloud.disk_requests == 0:
                pytest.skip(
                    "EXPORT-RESUME: the export downloaded no disk through FakeCloud.serve_disk"
                )
            problems = _result_problems(h, session, result, vm, options)
            if problems:
                h.fail(
                    expected="a correct file after the download was cut half way",
                    actual="\n  - " + "\n  - ".join(problems),
                )

    h.run(body)


# What other tools write besides the toolkit's own codecs, which come from its table.
_OTHER_FORMATS: Final = (
    ("bzip2", b"BZh", bz2.decompress),
    ("xz", b"\xfd7zXZ\x00", lzma.decompress),
)


def _decompress(data: bytes) -> tuple[str, bytes] | None:
    formats = [(c.name, c.magic, c.decompress) for c in CODECS.values()]
    for name, magic, decompress in (*formats, *_OTHER_FORMATS):
        if data.startswith(magic):
            return name, decompress(data)
    return None


@implements("EXPORT-COMPRESSION")
def export_compression(h: Harness) -> None:
    fmt = h.capabilities.supported_formats[0]

    async def body() -> None:
        async with h.session(h.world(2)) as session:
            vm = session.cloud.vms[0]
            options = ExportOptions(output_path=h.tmp_path / "out", format=fmt, compress=True)
            result = await _export(h, session, vm, options)
            problems = _result_problems(h, session, result, vm, options)
            main = options.output_path / result.files[0] if result.files else None
            if main is not None and main.is_file():
                decoded = _decompress(main.read_bytes())
                if decoded is None:
                    problems.append(f"{result.files[0]!r} is not gzip, bzip2, xz or zstd data")
                else:
                    algorithm, data = decoded
                    if len(data) != result.size:
                        problems.append(
                            f"it decompresses ({algorithm}) to {len(data)} bytes, "
                            f"but size is {result.size}"
                        )
                    if _is_disk_format(h, fmt) and data != session.cloud.disks[vm.id]:
                        problems.append(
                            f"it decompresses ({algorithm}) to something other than the disk"
                        )
            if problems:
                h.fail(
                    expected="a compressed main file that decompresses to the export",
                    actual="\n  - " + "\n  - ".join(problems),
                )

    h.run(body)
