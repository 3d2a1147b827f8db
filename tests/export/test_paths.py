"""safe_filename and export_file_path: hostile names stay inside output_path."""

from __future__ import annotations

import os
import unicodedata
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypersdk import ConfigurationError
from hypersdk.export import export_file_path, safe_filename

if TYPE_CHECKING:
    from pathlib import Path

_RESERVED_STEMS = (
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


def _assert_harmless(name: str, max_bytes: int = 200) -> None:
    assert name
    assert name not in {".", ".."}
    assert not name.startswith((".", " "))
    assert not name.endswith((".", " "))
    assert "/" not in name
    assert "\\" not in name
    assert not any(char in name for char in ':*?"<>|')
    assert not any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Cs"} for char in name)
    assert len(name.encode("utf-8")) <= max_bytes
    assert unicodedata.is_normalized("NFC", name)
    assert name.split(".", maxsplit=1)[0].casefold() not in _RESERVED_STEMS


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "_.._etc_passwd.qcow2"),
        ("/etc/shadow", "_etc_shadow.qcow2"),
        ("..", "vm.qcow2"),
        ("", "vm.qcow2"),
        ("   ", "vm.qcow2"),
        ("C:\\Windows\\system32", "C__Windows_system32.qcow2"),
        ("a\x00b", "a_b.qcow2"),
        ("line\nbreak\ttab", "line_break_tab.qcow2"),
        ("CON", "CON_.qcow2"),
        ("nul.txt", "nul_.txt.qcow2"),
        ("lpt9", "lpt9_.qcow2"),
        (".hidden", "hidden.qcow2"),
        ("trailing. ", "trailing.qcow2"),
        ("evil\u202egpj.exe", "evil_gpj.exe.qcow2"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9.qcow2"),  # NFD in, NFC out
        ("web-01", "web-01.qcow2"),
    ],
)
def test_hostile_names(hostile: str, expected: str) -> None:
    name = safe_filename(hostile, suffix="qcow2")
    assert name == expected
    _assert_harmless(name)


def test_long_names_are_cut_at_a_character_boundary() -> None:
    name = safe_filename("\u00e9" * 300, suffix="vmdk", max_bytes=64)
    assert len(name.encode("utf-8")) <= 64
    assert name.endswith(".vmdk")
    assert set(name.removesuffix(".vmdk")) == {"\u00e9"}
    four_byte = safe_filename("\U0001f600" * 100, max_bytes=33)
    assert len(four_byte.encode()) == 32  # 8 whole emoji, not 8.25


def test_suffix_may_carry_dashes_and_underscores() -> None:
    assert safe_filename("vm", suffix="vmdk-stream_1.gz") == "vm.vmdk-stream_1.gz"


@pytest.mark.parametrize("suffix", ["../x", "qcow2/", "a b", "q\x00", "a..b"])
def test_bad_suffix_is_rejected(suffix: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^suffix: must be"):
        safe_filename("vm", suffix=suffix)


def test_bad_max_bytes_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"^max_bytes: must be"):
        safe_filename("vm", max_bytes=300)


@settings(max_examples=300, deadline=None)
@given(name=st.text(), max_bytes=st.integers(32, 255))
def test_any_name_is_harmless(name: str, max_bytes: int) -> None:
    _assert_harmless(safe_filename(name, suffix="raw.gz", max_bytes=max_bytes), max_bytes)


@settings(max_examples=100, deadline=None)
@given(name=st.text(alphabet=st.characters(codec="utf-8"), min_size=1))
def test_result_is_a_direct_child(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    directory = tmp_path_factory.mktemp("out")
    path = export_file_path(directory, name, suffix="qcow2")
    assert path.parent == directory
    assert os.path.realpath(path).startswith(os.path.realpath(directory) + os.sep)
    path.write_bytes(b"")  # the name is valid on this file system


def test_collisions_get_a_counter(tmp_path: Path) -> None:
    first = export_file_path(tmp_path, "web", suffix="qcow2")
    first.write_bytes(b"1")
    second = export_file_path(tmp_path, "web", suffix="qcow2")
    assert second.name == "web-1.qcow2"
    second.write_bytes(b"2")
    (tmp_path / "web-2.qcow2").symlink_to(tmp_path / "missing")  # a dangling link counts
    assert export_file_path(tmp_path, "web", suffix="qcow2").name == "web-3.qcow2"
    assert export_file_path(tmp_path, "web", suffix="qcow2", overwrite=True) == first


def test_collision_counter_respects_the_byte_limit(tmp_path: Path) -> None:
    long_name = "x" * 100
    taken = export_file_path(tmp_path, long_name, suffix="raw", max_bytes=40)
    taken.write_bytes(b"")
    other = export_file_path(tmp_path, long_name, suffix="raw", max_bytes=40)
    assert other != taken
    assert len(other.name.encode()) <= 40
    assert other.name.endswith("-1.raw")


def test_output_path_is_created(tmp_path: Path) -> None:
    path = export_file_path(tmp_path / "a" / "b", "vm", suffix="raw")
    assert path.parent.is_dir()


def test_output_path_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ConfigurationError, match=r"^output_path: must be a directory"):
        export_file_path(tmp_path / "file", "vm", suffix="raw")
