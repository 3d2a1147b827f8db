"""Download-and-verify: hypersdk.export.download vs ``curl -o FILE URL && sha256sum FILE``.

Serves a generated file (1 GiB by default) from a loopback HTTP server running in its
own process (so it does not compete with the client for the GIL), then alternates runs
of (a) curl followed by sha256sum and (b) hypersdk's download with the expected SHA-256,
each in a fresh process. Prints every run, the medians, the median ratio b/a and
hypersdk's peak RSS, measured in the child with ``resource.getrusage``.

    python benchmarks/bench_download.py [--size-mib 1024] [--runs 5] [--dir DIR]

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


def _child(url: str, destination: str, expected: str) -> None:
    """Run in a fresh interpreter: download, verify, report time and peak RSS as JSON."""
    started = time.perf_counter()
    import anyio

    from hypersdk._http import httpx
    from hypersdk.export import download

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


def _time_hypersdk(url: str, destination: Path, expected: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, __file__, "--child", url, str(destination), expected],
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
        "--child", nargs=3, metavar=("URL", "DEST", "SHA256"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    for tool in ("curl", "sha256sum"):
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
        curl_times: list[float] = []
        wall_times: list[float] = []
        download_times: list[float] = []
        peaks: list[int] = []
        try:
            for run in range(1, args.runs + 1):
                # Each run starts with no dirty pages left by the one before: writeback
                # of an earlier gigabyte would otherwise be charged to the next tool.
                os.sync()
                curl_times.append(_time_curl(url, target, expected))
                target.unlink()
                os.sync()
                wall, seconds, peak = _time_hypersdk(url, target, expected)
                target.unlink()
                wall_times.append(wall)
                download_times.append(seconds)
                peaks.append(peak)
                print(
                    f"run {run}: curl+sha256sum {curl_times[-1]:.3f} s | hypersdk "
                    f"{wall:.3f} s process, {seconds:.3f} s download | "
                    f"peak RSS {peak / 1024:.1f} MiB",
                    flush=True,
                )
        finally:
            server.terminate()
            server.join()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _summary(args.size_mib, curl_times, wall_times, download_times, peaks)


def _summary(
    size_mib: int,
    curl_times: list[float],
    wall_times: list[float],
    download_times: list[float],
    peaks: list[int],
) -> None:
    ratios = [wall / curl for wall, curl in zip(wall_times, curl_times, strict=True)]
    download_ratios = [b / a for b, a in zip(download_times, curl_times, strict=True)]
    print()
    print(f"size                      {size_mib} MiB, {len(curl_times)} runs each, alternating")
    print(f"median curl+sha256sum (a) {statistics.median(curl_times):.3f} s")
    print(f"median hypersdk (b)       {statistics.median(wall_times):.3f} s (whole process)")
    print(f"median hypersdk download  {statistics.median(download_times):.3f} s (in process)")
    print(f"median ratio b/a          {statistics.median(ratios):.3f} (target <= 0.6)")
    print(f"median ratio, in process  {statistics.median(download_ratios):.3f}")
    print(f"peak RSS hypersdk         {max(peaks) / 1024:.1f} MiB max (target <= 64)")


if __name__ == "__main__":
    main()
