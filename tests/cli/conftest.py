"""A world for driving the real ``hypersdk`` console script in a subprocess.

``cli_env`` builds: a plugin directory holding ``clisample.py`` (an async provider of
three VMs whose export downloads a disk from a loopback HTTP server with the export
toolkit), a configuration file pointing at both, and an environment with HOME and the
config directories moved into the test's temporary directory so the machine's own
plugins and settings never leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import attrs
import pytest

DISK = b"\x00" * 4096 + bytes(range(256)) * 256  # a small "raw" disk: ~70 KiB
TOKEN = "cli-s3cret-token"

PLUGIN = textwrap.dedent(
    '''
    """A provider plugin for the CLI tests."""
    from __future__ import annotations

    import logging
    from datetime import UTC, datetime

    import httpx

    import hypersdk
    from hypersdk.export import export_disk_image

    CAPS = hypersdk.ExportCapabilities(
        supported_formats=["raw"], supports_compression=True, supports_streaming=True
    )
    PLUGIN_INFO = hypersdk.PluginMetadata(
        name="clisample", version="1.0.0", provider_type="clisample", capabilities=CAPS,
        description="CLI test plugin",
    )
    VMS = [
        hypersdk.VMInfo(provider="clisample", id="1", name="web-1", state="active",
                        num_cpus=2, memory_mb=2048, tags={"env": "prod"},
                        created_at=datetime(2026, 1, 1, tzinfo=UTC)),
        hypersdk.VMInfo(provider="clisample", id="2", name="web-2", state="active",
                        num_cpus=1, memory_mb=1024, tags={"env": "prod"}),
        hypersdk.VMInfo(provider="clisample", id="3", name="db-1", state="off",
                        num_cpus=4, memory_mb=8192, tags={"env": "dev"}),
    ]


    class CliSample(hypersdk.Provider):
        def __init__(self, config: hypersdk.ProviderConfig, logger: logging.Logger) -> None:
            self._config = config
            self._client: httpx.AsyncClient | None = None

        @property
        def name(self) -> str:
            return "CLI sample"

        @property
        def type(self) -> hypersdk.ProviderType:
            return hypersdk.ProviderType("clisample")

        async def connect(self, config: hypersdk.ProviderConfig) -> None:
            if config.metadata.get("token") != "%(token)s":
                raise hypersdk.AuthenticationError("clisample connect: the token was rejected")
            self._config = config
            self._client = httpx.AsyncClient(timeout=10)

        async def disconnect(self) -> None:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

        async def validate_credentials(self) -> None:
            pass

        async def list_vms(self, filter=None):
            return [vm for vm in VMS if filter is None or filter.matches(vm)]

        async def get_vm(self, identifier: str) -> hypersdk.VMInfo:
            for vm in VMS:
                if vm.id == identifier:
                    return vm
            raise hypersdk.VMNotFoundError(f"clisample get_vm: no VM {identifier!r}")

        async def export_vm(self, identifier, options, *, progress=None):
            if options.format != "raw":
                raise hypersdk.UnsupportedFormatError(f"clisample: {options.format!r} unsupported")
            vm = await self.get_vm(identifier)
            assert self._client is not None
            return await export_disk_image(
                self._client, self._config.metadata["disk_url"], options,
                provider="clisample", vm_id=vm.id, vm_name=vm.name, progress=progress,
            )

        def get_export_capabilities(self) -> hypersdk.ExportCapabilities:
            return CAPS


    def new_provider(config: hypersdk.ProviderConfig, logger: logging.Logger) -> CliSample:
        return CliSample(config, logger)
    '''
) % {"token": TOKEN}


class _DiskHandler(BaseHTTPRequestHandler):
    delay = 0.0  # seconds between chunks; the SIGINT test slows the server down
    extra_headers: dict[str, str] = {}  # noqa: RUF012  (the redaction test sets cookies)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(DISK)))
        for name, value in type(self).extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        for start in range(0, len(DISK), 4096):
            try:
                self.wfile.write(DISK[start : start + 4096])
                self.wfile.flush()
            except OSError:
                return
            time.sleep(type(self).delay)

    def log_message(self, format: str, *args: object) -> None:
        pass


@attrs.define
class CliEnv:
    root: Path
    plugin_dir: Path
    config: Path
    env: dict[str, str]
    disk_url: str
    handler: type[_DiskHandler]

    def run(
        self, *args: str, timeout: float = 60, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(hypersdk_script()), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(extra_env or {})},
            cwd=self.root,
            check=False,
        )

    def write_config(self, providers_table: str) -> None:
        self.config.write_text(
            f'[plugins]\ndirectories = ["{self.plugin_dir}"]\n\n{providers_table}', encoding="utf-8"
        )


def hypersdk_script() -> Path:
    script = Path(sys.executable).parent / ("hypersdk.exe" if os.name == "nt" else "hypersdk")
    assert script.exists(), "the hypersdk console script is not installed (pip install -e '.[cli]')"
    return script


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[CliEnv]:
    handler = type("Handler", (_DiskHandler,), {"delay": 0.0, "extra_headers": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(mode=0o755)
    (plugin_dir / "clisample.py").write_text(PLUGIN, encoding="utf-8")
    (plugin_dir / "clisample.py").chmod(0o644)
    home = tmp_path / "home"
    home.mkdir()
    url = f"http://127.0.0.1:{server.server_address[1]}/disk.raw"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HYPERSDK_", "XDG_")) and key != "CLISAMPLE_TOKEN"
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        HYPERSDK_CONFIG=str(tmp_path / "config.toml"),
        CLISAMPLE_TOKEN=TOKEN,
        COLUMNS="200",
    )
    world = CliEnv(tmp_path, plugin_dir, tmp_path / "config.toml", env, url, handler)
    world.write_config(
        f'[providers.clisample]\ntoken_env = "CLISAMPLE_TOKEN"\ndisk_url = "{url}"\n'
    )
    try:
        yield world
    finally:
        server.shutdown()
        server.server_close()
