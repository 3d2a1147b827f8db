"""VMInfo.ip_addresses accepts exactly what ipaddress.ip_address accepts (its fast path too)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hypersdk import ConfigurationError, VMInfo


def accepted_by_ipaddress(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def accepted_by_vminfo(text: str) -> bool:
    try:
        VMInfo(provider="t", id="1", name="n", ip_addresses=[text])
    except ConfigurationError:
        return False
    return True


octets = st.one_of(
    st.integers(0, 300).map(str), st.sampled_from(["00", "01", "007", "0x1", "", " 1", "\uff11"])
)


@settings(max_examples=300)
@given(
    st.one_of(
        st.lists(octets, min_size=3, max_size=5).map(".".join),
        st.text(alphabet="0123456789abcdefABCDEF.:%/ ", max_size=45),
        st.ip_addresses().map(str),
    )
)
@example("255.255.255.255")
@example("256.1.1.1")
@example("1.2.3.04")
@example("::ffff:1.2.3.4")
@example("fe80::1%eth0")
@example("1.2.3.4\n")
@example("1.2.3.4\x00")
@example("1.2.3.4.")
@example("0x1.2.3.4")
@example("1.2.3.0000")
@example("\u0661.2.3.4")
def test_the_same_strings_as_ipaddress(text: str) -> None:
    assert accepted_by_vminfo(text) == accepted_by_ipaddress(text)


@pytest.mark.parametrize("text", ["0.0.0.0", "10.128.192.124", "2604:a880:0:1010::18a:a001"])
def test_common_addresses_are_accepted(text: str) -> None:
    assert accepted_by_vminfo(text)
