"""Download-and-verify: hypersdk.export.download vs ``curl -o FILE URL && sha256sum FILE``.

Serves a generated file (1 GiB by default) from a loopback HTTP server running in its
own process (so it does not compete with the client for the GIL), then alternates runs
of (a) curl followed by sha256sum, (b) hypersdk's download with the expected SHA-256,
each in a fresh process, once per ``--writeback`` method and ``--read-size``, and (c)
``dd if=/dev/zero
bs=1M count=N conv=fsync`` into the same directory: what the disk itself takes to
write and sync that many bytes, the floor for any durable download. Prints every run,
the medians, the median ratios to (a) and hypersdk's peak RSS, measured in the child
with ``resource.getrusage``.

    python benchmarks/bench_download.py [--size-mib 1024] [--runs 5] [--dir DIR]
        [--writeback sync_file_range,fdatasync,none] [--read-size 65536,1048576]
        [--window-mib 8,32,128]

``--writeback`` names the write-behind methods to compare (see ``_WriteBehind`` in
``hypersdk/export/_download.py``; the default is the one downloads use).
``--read-size`` names the socket read sizes to compare while the body streams (the
download raises httpcore's 64 KiB on its own connection; the default is the library's),
``--window-mib`` the write-behind windows; every combination of the three is run.

Not run by the tests. Needs curl and sha256sum on PATH (Linux or macOS). Both sides
write to the same directory (``--dir``; a temporary one by default); hypersdk fsyncs
the file and its directory before renaming it, curl does not, so on a slow disk the
comparison is tilted against hypersdk. Every run starts after ``os.sync()``.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

_BLOCK = 1 << 20


class _FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves one file with sendfile(2); the benchmark measures clients, not this."""

    path_to_serve = Path()

    def do_GET(self) -> None:
        size = self.path_to_serve.stat().st_size
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        with self.path_to_serve.open("rb") as file:
            self.connection.sendfile(file)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(path: str, port_queue: multiprocessing.Queue[int]) -> None:
    _FileHandler.path_to_serve = Path(path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _generate(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as file:
        # Incompressible and not all zeros, so nothing along the way can shortcut it.
        seed = os.urandom(_BLOCK)
        for index in range(size_mib):
            block = index.to_bytes(8, "little") + seed[8:]
            file.write(block)
            digest.update(block)
    return digest.hexdigest()


class _Variant(NamedTuple):
    """One way of running hypersdk's download: write-behind method, read size, window."""

    method: str
    read_size: int
    window_mib: int

    def __str__(self) -> str:
        return f"{self.method}/{self.read_size // 1024}K/{self.window_mib}M"


def _child(url: str, destination: str, expected: str, variant: _Variant) -> None:
    """Run in a fresh interpreter: download, verify, report time and peak RSS as JSON."""
    started = time.perf_counter()
    import anyio

    from hypersdk._http import httpx
    from hypersdk.export import _download, download

    _download._WRITEBACK = variant.method
    _download._READ_SIZE = variant.read_size
    _download._WRITEBACK_WINDOW = variant.window_mib << 20

    async def main() -> float:
        async with httpx.AsyncClient(timeout=60.0) as client:
            begun = time.perf_counter()
            await download(client, url, destination, expected_sha256=expected)
            return time.perf_counter() - begun

    seconds = anyio.run(main)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there, KiB on Linux
        peak_kib //= 1024
    total = time.perf_counter() - started
    print(json.dumps({"download": seconds, "process": total, "peak_rss_kib": peak_kib}))


def _time_curl(url: str, destination: Path, expected: str) -> float:
    started = time.perf_counter()
    output = subprocess.run(
        f"curl -s -o {destination} {url} && sha256sum {destination}",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds = time.perf_counter() - started
    if not output.startswith(expected):
        raise SystemExit(f"curl run produced a different file: {output!r}")
    return seconds


def _time_dd(destination: Path, size_mib: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={destination}", "bs=1M", f"count={size_mib}", "conv=fsync"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _time_hypersdk(
    url: str, destination: Path, expected: str, variant: _Variant
) -> tuple[float, float, int]:
    started = time.perf_counter()
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            url,
            str(destination),
            expected,
            *map(str, variant),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - started
    report = json.loads(output)
    return wall, float(report["download"]), int(report["peak_rss_kib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: temp)")
    parser.add_argument(
        "--writeback",
        default=None,
        help="comma-separated write-behind methods to compare (default: the library's)",
    )
    parser.add_argument(
        "--read-size",
        default=None,
        help="comma-separated socket read sizes to compare (default: the library's)",
    )
    parser.add_argument(
        "--window-mib",
        default=None,
        help="comma-separated write-behind windows in MiB (default: the library's)",
    )
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, dest, sha, method, read_size, window = args.child
        _child(url, dest, sha, _Variant(method, int(read_size), int(window)))
        return
    from hypersdk.export import _download

    methods = [
        _Variant(method, int(size), int(window))
        for method in (args.writeback or _download._WRITEBACK).split(",")
        for size in (args.read_size or str(_download._READ_SIZE)).split(",")
        for window in (args.window_mib or str(_download._WRITEBACK_WINDOW >> 20)).split(",")
    ]
    for tool in ("curl", "sha256sum", "dd"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed on PATH")
    workdir = Path(tempfile.mkdtemp(prefix="hypersdk-bench-", dir=args.dir))
    try:
        source = workdir / "source.img"
        print(f"generating {args.size_mib} MiB in {workdir} ...", flush=True)
        expected = _generate(source, args.size_mib)
        ports: multiprocessing.Queue[int] = multiprocessing.Queue()
        server = multiprocessing.Process(target=_serve, args=(str(source), ports), daemon=True)
        server.start()
        url = f"http://127.0.0.1:{ports.get(timeout=10)}/source.img"
        target = workdir / "downloaded.img"
        figures = _Figures(methods)
        try:
            for run in range(1, args.runs + 1):
                figures.round(run, url, target, expected, args)
        finally:
            server.terminate()
            server.join()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures.summary(args.size_mib)


class _Figures:
    """Every round's times, per tool and per write-behind method."""

    def __init__(self, variants: list[_Variant]) -> None:
        self.curl: list[float] = []
        self.dd: list[float] = []
        self.variants = variants
        self.walls: dict[str, list[float]] = {str(v): [] for v in variants}
        self.downloads: dict[str, list[float]] = {str(v): [] for v in variants}
        self.peaks: list[int] = []

    def round(
        self, run: int, url: str, target: Path, expected: str, args: argparse.Namespace
    ) -> None:
        # Each run starts with no dirty pages left by the one before: writeback of an
        # earlier gigabyte would otherwise be charged to the next tool.
        os.sync()
        self.curl.append(_time_curl(url, target, expected))
        target.unlink()
        line = f"run {run}: curl+sha256sum {self.curl[-1]:.3f} s"
        for variant in self.variants:
            name = str(variant)
            os.sync()
            wall, seconds, peak = _time_hypersdk(url, target, expected, variant)
            target.unlink()
            self.walls[name].append(wall)
            self.downloads[name].append(seconds)
            self.peaks.append(peak)
            line += f" | {name} {wall:.3f} s ({seconds:.3f} in process)"
        os.sync()
        self.dd.append(_time_dd(target, args.size_mib))
        target.unlink()
        line += f" | dd {self.dd[-1]:.3f} s | peak RSS {max(self.peaks) / 1024:.1f} MiB"
        print(line, flush=True)

    def summary(self, size_mib: int) -> None:
        _summary(
            size_mib=size_mib,
            curl_times=self.curl,
            dd_times=self.dd,
            walls=self.walls,
            downloads=self.downloads,
            peaks=self.peaks,
        )


def _summary(
    *,
    size_mib: int,
    curl_times: list[float],
    dd_times: list[float],
    walls: dict[str, list[float]],
    downloads: dict[str, list[float]],
    peaks: list[int],
) -> None:
    def ratio(times: list[float]) -> float:
        return statistics.median(b / a for b, a in zip(times, curl_times, strict=True))

    print()
    print(f"size                            {size_mib} MiB, {len(curl_times)} rounds, alternating")
    print(f"median curl+sha256sum (a)  {statistics.median(curl_times):.3f} s")
    print(
        f"median dd conv=fsync       {statistics.median(dd_times):.3f} s "
        f"(ratio to a {ratio(dd_times):.3f}; the disk's floor)"
    )
    for method, times in walls.items():
        print(
            f"median hypersdk {method:<28}{statistics.median(times):.3f} s whole process, "
            f"{statistics.median(downloads[method]):.3f} s in process; ratio to a "
            f"{ratio(times):.3f} ({ratio(downloads[method]):.3f} in process; target <= 0.6)"
        )
    print(f"peak RSS hypersdk          {max(peaks) / 1024:.1f} MiB max (target <= 64)")


if __name__ == "__main__":
    main()
