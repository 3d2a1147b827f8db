"""``PluginMetadata.dependencies``: plain requirements skip packaging, and the decision stays packaging's.

``"httpx>=0.28,<1"`` and ``"msgspec"`` are checked by one regular expression
(``hypersdk.models._plain_requirement``) instead of ``packaging.requirements``, whose import
costs every application that loads a plugin. Whatever that expression accepts must be
valid for packaging; everything else is still decided (and worded) by packaging.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from packaging.requirements import InvalidRequirement, Requirement

from hypersdk import ConfigurationError, PluginMetadata
from hypersdk.models import _plain_requirement


def packaging_accepts(text: str) -> bool:
    try:
        Requirement(text)
    except (InvalidRequirement, RecursionError):
        return False
    return True


def metadata_accepts(text: str) -> bool:
    try:
        PluginMetadata(name="p", version="1.0", provider_type="p", dependencies=(text,))
    except ConfigurationError:
        return False
    return True


# Pieces near the expression's edges: names with the separators PEP 508 allows inside,
# every operator (and some that are not), release numbers, stars, pre-release and local
# parts, and the spaces, extras, markers and URLs left to packaging.
_pieces = st.sampled_from(
    [
        "a", "Z", "0", "9", "httpx", "zope.interface", "my-pkg", "my_pkg", ".", "-", "_",
        "~=", "==", "!=", "<=", ">=", "<", ">", "===", "=", "!", "~", "=<", "=>",
        "1", "0", "28", "1.2", "01", ".*", "*", ".0", "a1", "rc1", ".dev0", ".post1",
        "+local", "v1", ",", ", ", " ", "\t", "\n", "[", "]", "[extra]", ";",
        "; python_version>='3.11'", "@", " @ https://example.invalid/x.whl", "(", ")",
        "\u00e9", "\u0661", "\x00", "#",
    ]
)  # fmt: skip
requirement_like = st.lists(_pieces, min_size=1, max_size=10).map("".join)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(text=st.one_of(requirement_like, st.text(max_size=20)))
@example(text="httpx>=0.28,<1")
@example(text="anyio~=4")
@example(text="anyio~=4.5")
@example(text="x>=1.*")
@example(text="x==1.*")
@example(text="x!=1.2.*")
@example(text="x-")
@example(text="x>=1,")
@example(text="x\u0661>=1")
def test_the_decision_is_packagings(text: str) -> None:
    if _plain_requirement().fullmatch(text):
        assert packaging_accepts(text), text
    assert metadata_accepts(text) == packaging_accepts(text)


def test_what_plugins_declare_takes_the_fast_path() -> None:
    for text in ("httpx>=0.28,<1", "anyio>=4.5", "msgspec", "sniffio>=1.3", "a.b-c_d==1.*"):
        assert _plain_requirement().fullmatch(text), text
    for text in ("httpx[http2]>=0.28", "x>=1; python_version>='3.11'", "x >= 1", "x~=1"):
        assert not _plain_requirement().fullmatch(text), text
