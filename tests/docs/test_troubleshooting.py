"""docs/troubleshooting.md quotes what hypersdk really prints: each case is run here.

Every symptom on the page is reproduced with a real broken plugin in a real plugin
directory; the message the plugin manager records must appear on the page word for word
(with the temporary directory shown as ``/home/me/.hypersdk/plugins`` and this
installation's versions as the page's), so the page cannot drift from the code.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

import hypersdk
from hypersdk.plugins import PluginConfig, PluginManager

PAGE = Path(__file__).parents[2] / "docs" / "troubleshooting.md"
SHOWN_DIR = "/home/me/.hypersdk/plugins"
SHOWN_SDK = "0.1.0.dev0"
SHOWN_PYTHON = "3.11.7"

# A working plugin, from which each case breaks one thing.
GOOD = """\
import logging

from hypersdk import PluginMetadata, ProviderConfig
from hypersdk_tinycloud import PLUGIN_INFO as TINY, TinyCloudProvider

PLUGIN_INFO = PluginMetadata(
    name="acme", version="1.0.0", provider_type="tinycloud", capabilities=TINY.capabilities
)


def new_provider(config: ProviderConfig, logger: logging.Logger) -> TinyCloudProvider:
    return TinyCloudProvider(logger)
"""


def _edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


CASES: dict[str, str] = {
    "no-plugin-info": _edit("PLUGIN_INFO = PluginMetadata(", "INFO = PluginMetadata("),
    "no-new-provider": _edit("def new_provider(", "def make_provider("),
    "wrong-signature": _edit(
        "def new_provider(config: ProviderConfig, logger: logging.Logger)",
        "def new_provider(config: ProviderConfig)",
    ),
    "async-factory": _edit("def new_provider(", "async def new_provider("),
    "returns-none": _edit("return TinyCloudProvider(logger)", "return None"),
    "factory-raises": _edit("return TinyCloudProvider(logger)", "return TinyCloudProvidr(logger)"),
    "bad-metadata": _edit('version="1.0.0"', 'version="one"'),
    "missing-dependency": _edit("import logging\n", "import logging\n\nimport tinycloud_sdk\n"),
    "min-sdk-version": _edit('version="1.0.0",', 'version="1.0.0", min_sdk_version="9.0.0",'),
    "python-requires": _edit('version="1.0.0",', 'version="1.0.0", python_requires=">=3.99",'),
    "writable": GOOD,
}


def _message(tmp_path: Path, case: str) -> str:
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o700)
    source = plugins / "acme.py"
    source.write_text(CASES[case])
    source.chmod(0o666 if case == "writable" else 0o644)
    manager = PluginManager(PluginConfig(directories=[plugins], entry_points=False))
    (info,) = manager.load_all()
    assert info.status == "failed", info
    assert info.error is not None
    return (
        str(info.error)
        .replace(str(plugins), SHOWN_DIR)
        .replace(f"hypersdk {hypersdk.__version__}", f"hypersdk {SHOWN_SDK}")
        .replace(f"Python {platform.python_version()}", f"Python {SHOWN_PYTHON}")
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_page_quotes_the_real_message(tmp_path: Path, case: str) -> None:
    message = _message(tmp_path, case)
    assert message in PAGE.read_text(), f"docs/troubleshooting.md should quote:\n{message}"


def test_unknown_provider_type_message() -> None:
    registry = hypersdk.Registry()
    with pytest.raises(hypersdk.ConfigurationError) as caught:
        registry.create("acme", hypersdk.ProviderConfig(type="acme"))
    assert str(caught.value) in PAGE.read_text()


if __name__ == "__main__":  # prints the messages, to paste into the page
    import tempfile

    for name in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o700)
            print(f"--- {name}\n{_message(Path(tmp), name)}\n")
