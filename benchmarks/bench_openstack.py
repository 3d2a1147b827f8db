"""A 1 GiB OpenStack export through the plugin, against ``curl -o`` + ``sha256sum``.

A loopback fake OpenStack (Keystone, Nova, Glance in one ``http.server`` process, the
image sent with ``sendfile``) serves one server whose snapshot is a 1 GiB raw image.
Each round runs, as separate processes:

* baseline: ``curl -s -o FILE <image file URL>`` then ``sha256sum FILE``;
* plugin:   ``OpenStackProvider.export_vm`` (createImage, poll, the toolkit's download,
  SHA-256 plus Glance's own hash -- sha512 by default, as Glance's default --, delete).

It prints the median wall time of each, the ratio, and the plugin process's peak RSS.

    python benchmarks/bench_openstack.py [--size-mib 1024] [--rounds 3] [--algo sha512]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER_ID = "9c8d1f2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
IMAGE_ID = "6c1f5b4e-8a2d-4f3b-9e7c-1d0a2b3c4d5e"
TOKEN = "gAAAAABm-bench-token"


def make_image(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)  # incompressible, and no disk-format magic at the start
    with path.open("wb") as file:
        for index in range(size >> 20):
            file.write(index.to_bytes(8, "big") + block[8:])


def serve(image: Path, algo: str) -> None:
    """The fake cloud (runs in its own process; prints its port, then serves)."""
    size = image.stat().st_size
    digest = hashlib.new(algo)
    md5 = hashlib.md5()  # Glance's legacy checksum
    with image.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
            md5.update(block)
    meta = {
        "id": IMAGE_ID,
        "status": "active",
        "disk_format": "raw",
        "container_format": "bare",
        "size": size,
        "checksum": md5.hexdigest(),
        "os_hash_algo": algo,
        "os_hash_value": digest.hexdigest(),
    }

    polls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _base(self) -> str:
            return f"http://{self.headers.get('Host', '127.0.0.1')}"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            if self.path == "/v3/auth/tokens":
                catalog = [
                    {"type": t, "endpoints": [{"interface": "public", "region_id": "RegionOne",
                                               "region": "RegionOne", "url": self._base() + p}]}
                    for t, p in (("compute", "/compute/v2.1"), ("image", "/image"))
                ]  # fmt: skip
                token = {"token": {"catalog": catalog, "expires_at": "2099-01-01T00:00:00Z"}}
                self._json(201, token, {"X-Subject-Token": TOKEN})
            elif self.path == f"/compute/v2.1/servers/{SERVER_ID}/action":
                polls.clear()
                self._json(202, {"image_id": IMAGE_ID})
            else:
                self._json(404, {"itemNotFound": {"code": 404, "message": "no"}})

        def do_DELETE(self) -> None:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            if self.headers.get("X-Auth-Token") != TOKEN:
                self._json(401, {"error": {"code": 401, "message": "no token"}})
            elif self.path.startswith(f"/compute/v2.1/servers/{SERVER_ID}"):
                flavor = {"vcpus": 2, "ram": 4096, "disk": 1, "original_name": "m1.medium"}
                server = {"id": SERVER_ID, "name": "bench-vm", "status": "ACTIVE", "flavor": flavor}
                self._json(200, {"server": server})
            elif self.path == f"/image/v2/images/{IMAGE_ID}":
                # The first poll finds the snapshot still saving, as a real one would be.
                polls.append(self.path)
                self._json(200, meta | {"status": "saving" if len(polls) == 1 else "active"})
            elif self.path == f"/image/v2/images/{IMAGE_ID}/file":
                self._file()
            else:
                self._json(404, {"message": "not found"})

        def _file(self) -> None:
            start = 0
            wanted = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
            if wanted:
                start = int(wanted[1])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size - start))
            self.end_headers()
            self.wfile.flush()
            with image.open("rb") as file:
                offset = start
                while offset < size:
                    sent = os.sendfile(self.connection.fileno(), file.fileno(), offset, 1 << 24)
                    if sent == 0:
                        break
                    offset += sent

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def export_once(port: int, out: Path) -> None:
    """One export through the plugin (runs in its own process; prints a JSON line)."""
    import anyio
    from hypersdk_openstack import OpenStackProvider

    from hypersdk import ExportOptions, ProviderConfig

    async def run() -> dict[str, object]:
        config = ProviderConfig(
            type="openstack",
            endpoint=f"http://127.0.0.1:{port}/v3",
            username="bench",
            password="secret",
            metadata={"project_name": "bench", "poll_interval": "0"},
        )
        started = time.perf_counter()
        async with OpenStackProvider() as provider:
            await provider.connect(config)
            result = await provider.export_vm(
                SERVER_ID, ExportOptions(output_path=out, format="raw")
            )
        return {
            "seconds": time.perf_counter() - started,
            "size": result.size,
            "verified": result.metadata["verified"],
            "sha256": result.checksum,
        }

    figures = anyio.run(run)
    figures["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--algo", default="sha512", help="Glance's os_hash_algo")
    parser.add_argument("--serve", nargs=2, metavar=("IMAGE", "ALGO"), help=argparse.SUPPRESS)
    parser.add_argument("--export", nargs=2, metavar=("PORT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), args.serve[1])
        return
    if args.export:
        export_once(int(args.export[0]), Path(args.export[1]))
        return
    if shutil.which("curl") is None or shutil.which("sha256sum") is None:
        sys.exit("the baseline needs curl and sha256sum on PATH")
    with tempfile.TemporaryDirectory(prefix="bench-openstack-") as tmp:
        root = Path(tmp)
        image = root / "image.raw"
        make_image(image, args.size_mib << 20)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(image), args.algo],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            rounds = [measure(root, port, number) for number in range(args.rounds)]
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(5)
    base = statistics.median(r[0] for r in rounds)
    ours = statistics.median(r[1] for r in rounds)
    mib = args.size_mib
    print(
        f"\n{mib} MiB image, median of {args.rounds}: curl -o + sha256sum {base:.2f} s "
        f"({mib / base:.0f} MiB/s); plugin export {ours:.2f} s ({mib / ours:.0f} MiB/s, "
        f"sha256 + {args.algo}); ratio {ours / base:.2f}x; plugin peak RSS "
        f"{statistics.median(r[2] for r in rounds):.0f} MiB"
    )


def measure(root: Path, port: int, number: int) -> tuple[float, float, float]:
    """One round: (curl + sha256sum seconds, plugin export seconds, plugin peak RSS MiB)."""
    url = f"http://127.0.0.1:{port}/image/v2/images/{IMAGE_ID}/file"
    target = root / "curl.raw"
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-s", "-f", "-o", str(target), "-H", f"X-Auth-Token: {TOKEN}", url], check=True
    )
    summed = subprocess.run(["sha256sum", str(target)], check=True, capture_output=True, text=True)
    baseline = time.perf_counter() - started
    target.unlink()
    out = root / f"out-{number}"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--export", str(port), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    plugin = time.perf_counter() - started
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["sha256"] != summed.stdout.split()[0]:
        sys.exit("the plugin's file differs from curl's")
    shutil.rmtree(out)
    print(
        f"round {number + 1}: curl+sha256sum {baseline:.2f} s, plugin {plugin:.2f} s "
        f"(in-process {figures['seconds']:.2f} s, verified sha256 + {figures['verified']}), "
        f"peak RSS {figures['max_rss_mib']:.0f} MiB",
        flush=True,
    )
    return baseline, plugin, figures["max_rss_mib"]


if __name__ == "__main__":
    main()
