"""Every component of a plugin's path, every link hop: the attacks of issue #10 item 2.

A hostile neighbour owns uid ``HOSTILE`` (owning nothing on the machine) and can write
to any folder that is writable by others. Each test plants what that neighbour would
plant and checks that nothing of theirs gets imported, and that the failure names the
unsafe component and the command that fixes it.
"""

from __future__ import annotations

import json
import os
import stat
import sysconfig
from pathlib import Path

import attrs
import pytest

from hypersdk import PluginLoadError
from hypersdk.plugins import PluginStatus, plugin_digest
from hypersdk.plugins._security import check_plugin_directory, read_snapshot
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write

pytestmark = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")

HOSTILE = 54321  # a uid that owns nothing: "another user"
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="giving a file to another uid (lchown) needs root; CI runs as root",
)


def shared_folder(path: Path, *, sticky: bool = False) -> Path:
    """A folder anyone may write to (``/tmp``-like when ``sticky``)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o1777 if sticky else 0o777)
    return path


def good_plugin_folder(path: Path, name: str = "good") -> Path:
    """A safe folder holding one valid plugin ``name``."""
    write(path / f"{name}.py", plugin_source(name))
    return path


def test_a_plugin_directory_linked_from_a_writable_folder_is_refused(tmp_path: Path) -> None:
    # The neighbour controls `shared`, so they control where shared/plugins points.
    real = good_plugin_folder(tmp_path / "real")
    shared = shared_folder(tmp_path / "shared")
    (shared / "plugins").symlink_to(real)

    infos = manager_for(shared / "plugins").load_all()

    (info,) = infos
    assert info.status is PluginStatus.FAILED
    assert info.source == f"plugin directory {shared / 'plugins'}"
    message = str(info.error)
    assert f"refusing plugin folder {shared}: it is writable by group and others" in message
    assert f"chmod go-w {shared}" in message
    assert not private_modules()


def test_a_plugin_directory_linked_into_the_standard_library_is_refused(
    tmp_path: Path,
) -> None:
    # The original attack: every standard module was imported as a plugin. json's folder
    # keeps a regression harmless (its modules import cleanly under any name).
    stdlib_json = Path(json.__file__).parent
    plugins = tmp_path / "plugins"
    plugins.symlink_to(stdlib_json)

    infos = manager_for(plugins).load_all()

    (info,) = infos
    assert info.status is PluginStatus.FAILED
    message = str(info.error)
    assert f"resolves to {stdlib_json.resolve()}, inside the Python standard library" in message
    assert "Point PluginConfig at a folder of your own" in message
    assert not private_modules()


def test_the_standard_library_itself_is_not_a_plugin_directory() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])

    infos = manager_for(stdlib).discover()  # discover imports nothing, even if this broke

    (info,) = infos
    assert info.status is PluginStatus.FAILED
    assert "inside the Python standard library" in str(info.error)


def test_a_plugin_directory_inside_site_packages_is_refused() -> None:
    site_package = Path(attrs.__file__).parent  # attrs' modules import cleanly anywhere

    (info,) = manager_for(site_package).load_all()

    assert info.status is PluginStatus.FAILED
    assert "inside site-packages" in str(info.error)
    assert not private_modules()


def test_a_link_chain_with_one_hop_in_a_writable_folder_is_refused(tmp_path: Path) -> None:
    # plugins/chain.py -> loose/hop -> safe/real.py: only the middle hop is exposed, and
    # whoever can write `loose` can repoint it.
    real = write(tmp_path / "safe" / "real.py", plugin_source("chain"))
    loose = shared_folder(tmp_path / "loose")
    (loose / "hop").symlink_to(real)
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o700)
    (plugins / "chain.py").symlink_to(loose / "hop")
    write(plugins / "good.py", plugin_source("good"))

    infos = {info.name: info for info in manager_for(plugins).load_all()}

    assert infos["good"].status is PluginStatus.LOADED
    assert infos["chain"].status is PluginStatus.FAILED
    message = str(infos["chain"].error)
    assert f"refusing plugin folder {loose}: it is writable by group and others" in message
    assert f"while loading {plugins / 'chain.py'}" in message
    assert f"chmod go-w {loose}" in message
    assert not any("chain" in name for name in private_modules())


@needs_root
def test_a_hop_owned_by_another_user_in_a_sticky_folder_is_refused(tmp_path: Path) -> None:
    # A sticky folder (/tmp) is fine only for entries owned by you or root: the
    # neighbour's own link there is theirs to repoint.
    real = write(tmp_path / "safe" / "real.py", plugin_source("sticky"))
    sticky = shared_folder(tmp_path / "sticky", sticky=True)
    hop = sticky / "hop"
    hop.symlink_to(real)
    os.lchown(hop, HOSTILE, HOSTILE)
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o700)
    (plugins / "sticky.py").symlink_to(hop)

    (info,) = manager_for(plugins).load_all()

    assert info.status is PluginStatus.FAILED
    message = str(info.error)
    assert f"refusing plugin link {hop}: it is owned by uid {HOSTILE}" in message
    assert f"chown -h {os.getuid()} {hop}" in message


def test_a_sticky_folder_on_the_path_is_fine_when_the_entries_are_ours(tmp_path: Path) -> None:
    sticky = shared_folder(tmp_path / "sticky", sticky=True)
    plugins = good_plugin_folder(sticky / "plugins")
    plugins.chmod(0o755)

    (info,) = manager_for(plugins).load_all()

    assert info.status is PluginStatus.LOADED


@needs_root
def test_a_folder_owned_by_another_user_anywhere_above_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    plugins = good_plugin_folder(theirs / "plugins")
    theirs.chmod(0o755)
    os.chown(theirs, HOSTILE, HOSTILE)  # they may rename `plugins` away and plant theirs

    (info,) = manager_for(plugins).load_all()

    assert info.status is PluginStatus.FAILED
    message = str(info.error)
    assert f"refusing plugin folder {theirs}: it is owned by uid {HOSTILE}" in message
    assert f"chown {os.getuid()} {theirs}" in message


@needs_root
def test_a_link_owned_by_another_user_is_refused_even_in_a_safe_folder(
    plugin_dir: Path, tmp_path: Path
) -> None:
    real = write(tmp_path / "safe" / "real.py", plugin_source("link"))
    link = plugin_dir / "link.py"
    link.symlink_to(real)
    os.lchown(link, HOSTILE, HOSTILE)

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert f"refusing plugin link {link}: it is owned by uid {HOSTILE}" in str(info.error)


def test_a_package_folder_linked_into_a_writable_folder_is_refused(tmp_path: Path) -> None:
    loose = shared_folder(tmp_path / "loose")
    package = loose / "pkg"
    write(package / "__init__.py", plugin_source("pkg"))
    package.chmod(0o755)
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o700)
    (plugins / "pkg").symlink_to(package)

    (info,) = manager_for(plugins).load_all()

    assert info.status is PluginStatus.FAILED
    assert f"refusing plugin folder {loose}: it is writable by group and others" in str(info.error)
    assert not private_modules()


def test_a_package_submodule_linked_into_a_writable_folder_is_refused(
    plugin_dir: Path, tmp_path: Path
) -> None:
    loose = shared_folder(tmp_path / "loose")
    impl = write(loose / "impl.py", plugin_source("pkg"))  # the file itself looks fine
    write(plugin_dir / "pkg" / "__init__.py", "from .impl import PLUGIN_INFO, new_provider\n")
    (plugin_dir / "pkg" / "impl.py").symlink_to(impl)

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    message = str(info.error)
    assert f"refusing plugin folder {loose}: it is writable by group and others" in message
    assert f"while loading {plugin_dir / 'pkg'}" in message
    assert not private_modules()


def test_a_package_subfolder_linked_into_a_writable_folder_is_refused(
    plugin_dir: Path, tmp_path: Path
) -> None:
    loose = shared_folder(tmp_path / "loose")
    write(loose / "sub" / "__init__.py", "")
    write(loose / "sub" / "impl.py", plugin_source("pkg"))
    (loose / "sub").chmod(0o755)
    write(plugin_dir / "pkg" / "__init__.py", "from .sub.impl import PLUGIN_INFO, new_provider\n")
    (plugin_dir / "pkg" / "sub").symlink_to(loose / "sub")

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert f"refusing plugin folder {loose}: it is writable by group and others" in str(info.error)
    assert not private_modules()


def test_safe_links_inside_a_package_are_followed(plugin_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "sub" / "__init__.py", "")
    write(elsewhere / "sub" / "impl.py", plugin_source("pkg"))
    write(plugin_dir / "pkg" / "__init__.py", "from .sub.impl import PLUGIN_INFO, new_provider\n")
    (plugin_dir / "pkg" / "sub").symlink_to(elsewhere / "sub")
    (plugin_dir / "pkg" / "loop").symlink_to(plugin_dir / "pkg")  # a cycle is not followed

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.LOADED
    files = read_snapshot(plugin_dir / "pkg").files
    assert sorted(Path(name).relative_to(plugin_dir).as_posix() for name in files) == [
        "pkg/__init__.py",
        "pkg/sub/__init__.py",
        "pkg/sub/impl.py",
    ]


def test_a_relative_link_with_dot_dot_is_resolved_like_the_kernel_does(tmp_path: Path) -> None:
    # plugins/up.py -> ../lib/../lib/real.py: ".." applies to the real folder.
    write(tmp_path / "lib" / "real.py", plugin_source("up"))
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o700)
    (plugins / "up.py").symlink_to(Path("..") / "lib" / ".." / "lib" / "real.py")

    (info,) = manager_for(plugins).load_all()

    assert info.status is PluginStatus.LOADED


def test_a_link_loop_is_a_failure_not_a_hang(plugin_dir: Path) -> None:
    (plugin_dir / "a.py").symlink_to(plugin_dir / "b.py")
    (plugin_dir / "b.py").symlink_to(plugin_dir / "a.py")

    with pytest.raises(Exception, match="symlinks"):
        read_snapshot(plugin_dir / "a.py")


def test_a_writable_plugin_directory_is_one_failure_and_the_others_load(tmp_path: Path) -> None:
    good = good_plugin_folder(tmp_path / "good")
    loose = good_plugin_folder(tmp_path / "loose", name="planted")
    loose.chmod(0o757)

    infos = {info.source: info for info in manager_for(good, loose).load_all()}

    assert infos[str(good / "good.py")].status is PluginStatus.LOADED
    failure = infos[f"plugin directory {loose}"]
    assert failure.status is PluginStatus.FAILED
    assert f"chmod go-w {loose}" in str(failure.error)
    assert not any("planted" in name for name in private_modules())


def test_check_plugin_directory_returns_the_real_folder(tmp_path: Path) -> None:
    real = good_plugin_folder(tmp_path / "real")
    (tmp_path / "alias").symlink_to(real)

    assert check_plugin_directory(tmp_path / "alias") == real
    assert stat.S_ISDIR(os.stat(real).st_mode)


def test_plugin_digest_follows_links_without_checking(tmp_path: Path) -> None:
    loose = shared_folder(tmp_path / "loose")
    real = write(loose / "real.py", plugin_source("x"))
    (tmp_path / "x.py").symlink_to(real)

    assert plugin_digest(tmp_path / "x.py") == plugin_digest(real)


def test_a_fixed_directory_loads_on_the_next_load_all(tmp_path: Path) -> None:
    loose = good_plugin_folder(tmp_path / "loose", name="later")
    loose.chmod(0o777)
    manager = manager_for(loose)
    (failure,) = manager.load_all()
    assert failure.status is PluginStatus.FAILED
    with pytest.raises(PluginLoadError, match="call load_all"):
        manager.reload_plugin(failure.source)

    loose.chmod(0o700)  # what the message said to do
    manager.load_all()

    assert [(info.name, info.status) for info in manager.list_plugins()] == [
        ("later", PluginStatus.LOADED)
    ]


def test_a_link_to_a_plugin_directory_from_a_safe_folder_loads(tmp_path: Path) -> None:
    real = good_plugin_folder(tmp_path / "real")
    (tmp_path / "alias").symlink_to(real)

    (info,) = manager_for(tmp_path / "alias").load_all()

    assert info.status is PluginStatus.LOADED
    assert info.source == str(tmp_path / "alias" / "good.py")
