"""List 10,000 droplets from a loopback fake of the DigitalOcean API with three clients.

(a) hypersdk-digitalocean (this repository's example plugin: concurrent pages, VMInfo out),
(b) pydo, DigitalOcean's official client (paging by hand, ``enforce_https=False`` because
it refuses to send a bearer token over http otherwise), (c) Apache Libcloud's DigitalOcean
driver (its v2 driver drops the ``host``/``port``/``secure`` constructor arguments, so the
script sets them on the driver's connection object and rebuilds it: no patching of code).
pydo and Libcloud are benchmark-only, not project dependencies: the script skips either
when it is not installed (install them with the command below).

The fake runs in its own processes (one per per-request delay), serves 200 droplets a
page shaped like DigitalOcean's own example droplet, with ``meta.total`` and absolute
``links.pages.next``/``last``, and the rate-limit headers of the real API. Two modes:

``listing``
    Each client run is a fresh child process that reports the time its listing took
    (process start, imports, building the client and the plugin's ``connect`` excluded)
    and its peak RSS (``ru_maxrss``, imports included).
``process``
    The whole process, as a command-line tool lives it: the wall time from spawning the
    interpreter to its exit, including interpreter start, imports, for hypersdk
    ``PluginManager().load_all()`` (entry-point discovery and loading of the plugin),
    ``registry.create`` and ``connect`` (``GET /v2/account``), then the listing. pydo
    builds its client and lists; Libcloud builds its driver and lists.

Runs alternate client and delay. The plugin returns ``VMInfo`` objects (GPU listing
included), pydo raw dicts, Libcloud ``Node`` objects. Usage::

    pip install -e . -e examples/digitalocean pydo apache-libcloud
    python benchmarks/bench_digitalocean.py                  # both modes, 5 rounds
    python benchmarks/bench_digitalocean.py --mode process --clients hypersdk,pydo \\
        --rounds 5 --delays 0,50 --droplets 10000

``--client-python`` runs the clients with another interpreter, such as that of a venv
holding only what a user installs (``pip install -e . -e examples/digitalocean pydo``):
a development venv has more installed, and some of it is imported at start (httpx loads
its command line, click and rich, whenever they are installed; ``load_all`` loads every
installed plugin).

Targets (issue 16, whole process): at 50 ms the plugin needs at most 0.2x pydo's wall
time, at 0 ms no more than pydo's, and its peak RSS must stay below pydo's.
"""

from __future__ import annotations

# Only what a client run needs is imported here: each run is this script in a fresh
# process, and the fake's and the orchestrator's modules (http.server, subprocess,
# statistics, argparse...) would otherwise be part of every client's start-up time.
import importlib
import json
import os
import resource
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    import subprocess
    from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(
    HERE, "..", "examples", "digitalocean", "tests", "fixtures", "droplet_get.json"
)
TOKEN = "dop_v1_benchmark-token"
CLIENTS = ("hypersdk", "pydo", "libcloud")
MODES = ("listing", "process")
INSTALL_HINT = "pip install -e . -e examples/digitalocean pydo apache-libcloud"
REQUIRED = "hypersdk"  # the others are compared against, and skipped when absent


# -- the fake API (runs in its own process) ----------------------------------------------


def build_pages(count: int, per_page: int, base: str) -> dict[int, bytes]:
    import copy

    with open(FIXTURE, encoding="utf-8") as fixture:
        template = json.load(fixture)["droplet"]
    last = max(1, -(-count // per_page))
    pages: dict[int, bytes] = {}
    for page in range(1, last + 1):
        droplets = []
        for index in range((page - 1) * per_page, min(count, page * per_page)):
            droplet = copy.deepcopy(template)
            droplet["id"] = 100_000 + index
            droplet["name"] = f"bench-{index:05d}.example.com"
            droplet["tags"] = ["bench", f"shard:{index % 16}"]
            droplets.append(droplet)
        links: dict[str, Any] = {"pages": {}}
        if page < last:
            links["pages"] = {
                "next": f"{base}/v2/droplets?page={page + 1}&per_page={per_page}",
                "last": f"{base}/v2/droplets?page={last}&per_page={per_page}",
            }
        body = {"droplets": droplets, "links": links, "meta": {"total": count}}
        pages[page] = json.dumps(body).encode()
    return pages


def serve(delay: float, count: int) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    per_page = 200
    empty = json.dumps({"droplets": [], "links": {"pages": {}}, "meta": {"total": 0}}).encode()
    account = json.dumps({"account": {"status": "active", "email": "bench@example.com"}})
    state: dict[str, dict[int, bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real API

        def do_GET(self) -> None:
            if delay:
                time.sleep(delay)
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.reply(401, b'{"id":"unauthorized","message":"Unable to authenticate you."}')
            elif url.path == "/v2/account":
                self.reply(200, account.encode())
            elif url.path == "/v2/droplets" and query.get("type") == "gpus":
                self.reply(200, empty)
            elif url.path == "/v2/droplets" and int(query.get("per_page", "20")) == per_page:
                self.reply(200, state["pages"].get(int(query.get("page", "1")), empty))
            else:
                self.reply(404, b'{"id":"not_found","message":"per_page must be 200 here"}')

        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ratelimit-limit", "5000")
            self.send_header("ratelimit-remaining", "4999")
            self.send_header("ratelimit-reset", str(int(time.time()) + 3600))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    state["pages"] = build_pages(count, per_page, base)
    print(base, flush=True)
    server.serve_forever()


# -- one client run (runs in its own process) --------------------------------------------


def run_hypersdk(base: str) -> int:
    import anyio
    from hypersdk_digitalocean import DigitalOceanProvider

    from hypersdk import ProviderConfig

    async def main() -> int:
        config = ProviderConfig(type="digitalocean", endpoint=base, metadata={"token": TOKEN})
        async with DigitalOceanProvider() as provider:
            await provider.connect(config)
            started = time.perf_counter()
            vms = await provider.list_vms()
            timings["list"] = time.perf_counter() - started
            return len(vms)

    return anyio.run(main)


def run_pydo(base: str) -> int:
    # Imported by name: pydo and libcloud are benchmark-only, not project dependencies.
    pydo = importlib.import_module("pydo")
    client = pydo.Client(TOKEN, endpoint=base)
    started = time.perf_counter()
    droplets: list[Any] = []
    page = 1
    while True:
        body = client.droplets.list(per_page=200, page=page, enforce_https=False)
        droplets += body["droplets"]
        if not body.get("links", {}).get("pages", {}).get("next"):
            break
        page += 1
    timings["list"] = time.perf_counter() - started
    return len(droplets)


def run_libcloud(base: str) -> int:
    from urllib.parse import urlsplit

    drivers = importlib.import_module("libcloud.compute.drivers.digitalocean")
    url = urlsplit(base)
    driver = drivers.DigitalOceanNodeDriver(TOKEN)
    # The v2 driver ignores host/port/secure passed to its constructor, and its connection
    # object is built (no I/O) at construction: re-aim it and build it again.
    driver.connection.host = url.hostname
    driver.connection.port = url.port
    driver.connection.secure = False
    driver.connection.connect()
    started = time.perf_counter()
    nodes = driver.list_nodes()
    timings["list"] = time.perf_counter() - started
    return len(nodes)


def process_hypersdk(base: str) -> int:
    # What an application does: find the plugin through the plugin system, build the
    # provider from the registry, connect (checks the token), list.
    import anyio

    from hypersdk import ProviderConfig
    from hypersdk.plugins import PluginManager

    async def main() -> int:
        manager = PluginManager()
        manager.load_all()
        config = ProviderConfig(type="digitalocean", endpoint=base, metadata={"token": TOKEN})
        async with manager.registry.create("digitalocean", config) as provider:
            await provider.connect(config)
            return len(await provider.list_vms())

    return anyio.run(main)


def process_pydo(base: str) -> int:
    return run_pydo(base)


def process_libcloud(base: str) -> int:
    return run_libcloud(base)


timings: dict[str, float] = {}


def whole_process(name: str, base: str) -> None:
    runner = {
        "hypersdk": process_hypersdk,
        "pydo": process_pydo,
        "libcloud": process_libcloud,
    }[name]
    count = runner(base)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"count": count, "rss_mib": peak_kib / 1024}))


def client(name: str, base: str) -> None:
    runner = {"hypersdk": run_hypersdk, "pydo": run_pydo, "libcloud": run_libcloud}[name]
    count = runner(base)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"count": count, "seconds": timings["list"], "rss_mib": peak_kib / 1024}))


# -- orchestration ---------------------------------------------------------------------


def missing_clients(python: str) -> list[str]:
    """The clients whose packages ``python`` (the interpreter that runs them) cannot import."""
    import subprocess

    modules = {"hypersdk": "hypersdk_digitalocean", "pydo": "pydo", "libcloud": "libcloud"}
    probe = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([n for n, m in json.loads(sys.argv[1]).items() "
        "if importlib.util.find_spec(m) is None]))"
    )
    done = subprocess.run(
        [python, "-c", probe, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    missing: list[str] = json.loads(done.stdout)
    return missing


def start_server(delay_ms: int, count: int) -> tuple[subprocess.Popen[str], str]:
    import subprocess

    process = subprocess.Popen(
        [sys.executable, __file__, "serve", str(delay_ms / 1000), str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    base = process.stdout.readline().strip()
    if not base.startswith("http://"):
        process.kill()
        raise SystemExit(f"the fake API did not start (got {base!r})")
    return process, base


def client_env() -> dict[str, str]:
    """The clients' environment: that of this script, with bytecode caching allowed.

    A user's interpreter caches compiled bytecode in ``__pycache__``. pip compiled pydo's
    and Libcloud's modules when it installed them; an editable install's sources are
    compiled on first import and cached then, unless ``PYTHONDONTWRITEBYTECODE`` (set on
    some CI machines and sandboxes) forbids writing the cache: then every run would compile
    hypersdk and the plugin from source, which no installed application does.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


CLIENT_ENV = client_env()


def run_once(mode: str, name: str, base: str, python: str = sys.executable) -> dict[str, float]:
    """One fresh child process; ``seconds`` is the listing (``listing``) or everything."""
    import subprocess

    command = "client" if mode == "listing" else "process"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [python, __file__, command, name, base],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=CLIENT_ENV,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    run: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if mode == "process":
        run["seconds"] = wall
    # CPU seconds of the whole child: a figure a busy machine disturbs less than wall time.
    run["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return run


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--droplets", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delays", default="0,50", help="per-request delays in ms")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--mode", default="listing,process", help="listing, process or both")
    parser.add_argument(
        "--client-python",
        default=sys.executable,
        help="the interpreter that runs the clients, e.g. that of a venv holding only what "
        "a user installs (default: this one)",
    )
    args = parser.parse_args()
    modes = [mode for mode in args.mode.split(",") if mode]
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown mode(s) {', '.join(sorted(unknown))}; use {MODES}")
    clients = [name for name in args.clients.split(",") if name]
    missing = [name for name in missing_clients(args.client_python) if name in clients]
    if REQUIRED in missing:
        raise SystemExit(f"hypersdk-digitalocean is not installed; install with: {INSTALL_HINT}")
    if missing:
        print(f"skipping {', '.join(missing)} (not installed; install with: {INSTALL_HINT})")
        clients = [name for name in clients if name not in missing]
    delays = [int(value) for value in args.delays.split(",")]
    servers = {delay: start_server(delay, args.droplets) for delay in delays}
    try:
        # One untimed run of each client first: it writes the bytecode caches (as the
        # first run of an installed application does) and warms the OS's file cache.
        for name in clients:
            run_once("process", name, servers[delays[0]][1], args.client_python)
        print(f"warmed up: one untimed run of {', '.join(clients)}")
        for mode in modes:
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            for round_index in range(args.rounds):
                # Alternate: the order of clients rotates every round, delays interleave.
                shift = round_index % len(clients)
                order = clients[shift:] + clients[:shift]
                for delay in delays:
                    for name in order:
                        run = run_once(mode, name, servers[delay][1], args.client_python)
                        if run["count"] != args.droplets:
                            raise SystemExit(f"{name} listed {run['count']}, not {args.droplets}")
                        results.setdefault((name, delay), []).append(run)
                        print(
                            f"{mode} round {round_index + 1} {delay:>3} ms {name:<9} "
                            f"{run['seconds']:7.3f} s {run['cpu_s']:7.3f} s CPU "
                            f"{run['rss_mib']:7.1f} MiB",
                            flush=True,
                        )
            report(results, clients, delays, args, mode)
    finally:
        for process, _base in servers.values():
            process.kill()
            process.wait()


def report(
    results: dict[tuple[str, int], list[dict[str, float]]],
    clients: list[str],
    delays: list[int],
    args: argparse.Namespace,
    mode: str,
) -> None:
    import statistics

    what = "whole process" if mode == "process" else "listing only"
    print(f"\n{what}: {args.droplets} droplets, 200 a page, {args.rounds} rounds, medians:")
    print(f"clients run by {args.client_python}")
    print(
        f"{'client':<10}{'delay':>7}{'wall s':>10}{'min s':>9}{'max s':>9}{'CPU s':>9}"
        f"{'peak RSS MiB':>15}"
    )
    median: dict[tuple[str, int], float] = {}
    rss: dict[str, float] = {}
    for delay in delays:
        for name in clients:
            runs = results[(name, delay)]
            seconds = [run["seconds"] for run in runs]
            median[(name, delay)] = statistics.median(seconds)
            rss[name] = max(rss.get(name, 0.0), *(run["rss_mib"] for run in runs))
            print(
                f"{name:<10}{delay:>5} ms{median[(name, delay)]:>10.3f}{min(seconds):>9.3f}"
                f"{max(seconds):>9.3f}{statistics.median(run['cpu_s'] for run in runs):>9.3f}"
                f"{statistics.median(run['rss_mib'] for run in runs):>15.1f}"
            )
    if "hypersdk" in clients:
        print("\nratios (hypersdk / other, wall time medians):")
        for delay in delays:
            for other in clients:
                if other != "hypersdk":
                    ratio = median[("hypersdk", delay)] / median[(other, delay)]
                    print(f"  {delay:>3} ms  hypersdk/{other:<9} {ratio:6.3f}x")
        print("peak RSS (max over runs): " + ", ".join(f"{n} {v:.1f} MiB" for n, v in rss.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(float(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "process":
        whole_process(sys.argv[2], sys.argv[3])
    else:
        main()
