"""Security: ownership and permission checks (as ssh does), and the SHA-256 allowlist."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from hypersdk import ConfigurationError, PluginLoadError
from hypersdk.plugins import PluginConfig, PluginStatus, plugin_digest
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")


@pytest.mark.parametrize(
    ("mode", "who"), [(0o664, "group"), (0o646, "others"), (0o666, "group and others")]
)
def test_a_plugin_file_writable_by_others_is_refused(plugin_dir: Path, mode: int, who: str) -> None:
    path = write(plugin_dir / "loose.py", plugin_source("loose"), mode=mode)
    write(plugin_dir / "tight.py", plugin_source("tight"))

    infos = {info.name: info for info in manager_for(plugin_dir).load_all()}

    assert infos["tight"].status is PluginStatus.LOADED
    assert infos["loose"].status is PluginStatus.FAILED
    message = str(infos["loose"].error)
    assert f"writable by {who}" in message
    assert f"chmod go-w {path}" in message
    assert not any("loose" in name for name in private_modules())


def test_a_plugin_folder_writable_by_group_refuses_its_plugins(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    write(shared / "inside.py", plugin_source("inside"))
    shared.chmod(0o775)

    (info,) = manager_for(shared).load_all()

    assert info.status is PluginStatus.FAILED
    assert f"refusing plugin folder {shared}" in str(info.error)


def test_a_group_writable_file_inside_a_package_refuses_the_package(plugin_dir: Path) -> None:
    write(plugin_dir / "pkg" / "__init__.py", "from .impl import PLUGIN_INFO, new_provider\n")
    write(plugin_dir / "pkg" / "impl.py", plugin_source("pkg"), mode=0o660)

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert "impl.py" in str(info.error)
    assert "writable by group" in str(info.error)


def test_a_plugin_owned_by_another_user_is_refused(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(plugin_dir / "theirs.py", plugin_source("theirs"))
    if os.getuid() == 0:
        os.chown(path, 65534, -1)  # as root we can make it really belong to "nobody"
        owner = 65534
    else:
        # Not root: pretend to be someone else, so our own file belongs to "another user".
        owner = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: owner + 1)

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert f"owned by uid {owner}" in str(info.error)
    assert "chown" in str(info.error)


def test_a_symlinked_plugin_is_checked_where_it_really_lives(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    real = write(loose / "real.py", plugin_source("linked"))
    loose.chmod(0o777)
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o700)
    (plugins / "linked.py").symlink_to(real)

    (info,) = manager_for(plugins).load_all()

    assert info.status is PluginStatus.FAILED
    assert f"refusing plugin folder {loose}" in str(info.error)


def test_the_allowlist_pins_exact_file_contents(plugin_dir: Path) -> None:
    pinned = write(plugin_dir / "pinned.py", plugin_source("pinned"))
    write(plugin_dir / "unknown.py", plugin_source("unknown"))
    digest = hashlib.sha256(pinned.read_bytes()).hexdigest()
    assert plugin_digest(pinned) == digest

    manager = manager_for(plugin_dir, sha256_allowlist=[digest.upper()])
    infos = {info.name: info for info in manager.load_all()}

    assert infos["pinned"].status is PluginStatus.LOADED
    assert infos["pinned"].digest == digest
    assert infos["unknown"].status is PluginStatus.FAILED
    unknown_digest = plugin_digest(plugin_dir / "unknown.py")
    assert unknown_digest in str(infos["unknown"].error)
    assert "sha256_allowlist" in str(infos["unknown"].error)


def test_a_package_digest_covers_every_source_file(plugin_dir: Path) -> None:
    package = plugin_dir / "pkg"
    write(package / "__init__.py", "from .impl import PLUGIN_INFO, new_provider\n")
    impl = write(package / "impl.py", plugin_source("pkg"))
    digest = plugin_digest(package)
    manager = manager_for(plugin_dir, sha256_allowlist=[digest])
    assert manager.load_all()[0].status is PluginStatus.LOADED

    write(impl, plugin_source("pkg", version="2.0"))

    assert plugin_digest(package) != digest
    with pytest.raises(PluginLoadError, match=r"not in PluginConfig\.sha256_allowlist"):
        manager.reload_plugin("pkg")
    info = manager.get_plugin("pkg")
    assert info is not None
    assert info.status is PluginStatus.LOADED
    assert info.metadata is not None
    assert info.metadata.version == "1.0"


@pytest.mark.parametrize("bad", ["abc", "g" * 64, 42])
def test_the_allowlist_accepts_only_sha256_hex_digests(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"PluginConfig\.sha256_allowlist"):
        PluginConfig(sha256_allowlist=[bad])  # type: ignore[list-item]
