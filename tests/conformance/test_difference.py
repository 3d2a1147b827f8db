"""difference(): how a listing differs from the world, in words an author can act on."""

from __future__ import annotations

from types import MappingProxyType

from hypersdk_testing._checks.discovery import difference


def vm(vm_id: str, **fields: object) -> dict[str, object]:
    return {"id": vm_id, "name": f"vm-{vm_id}", "tags": MappingProxyType({}), **fields}


def test_equal_listings_have_no_difference() -> None:
    assert difference([vm("1"), vm("2")], [vm("1"), vm("2")]) == ""


def test_missing_and_unexpected_ids() -> None:
    text = difference([vm("1"), vm("2"), vm("3")], [vm("1"), vm("4")])
    assert text.splitlines()[0] == "2 VM(s) where 3 were expected"
    assert "missing ids: '2', '3'" in text
    assert "unexpected ids: '4'" in text


def test_duplicates_are_named() -> None:
    text = difference([vm("1"), vm("2")], [vm("1"), vm("2"), vm("2")])
    assert "duplicated ids: '2'" in text


def test_order() -> None:
    text = difference([vm("1"), vm("2")], [vm("2"), vm("1")])
    assert text.splitlines()[0] == "the right 2 VM(s), in another order"
    assert "position 0: expected id '1', got '2'" in text


def test_fields_are_shown_as_written() -> None:
    text = difference([vm("1", tags=MappingProxyType({"env": "prod"}))], [vm("1")])
    assert text.splitlines()[0] == "the right 1 VM(s), but with different field values"
    assert "VM '1' differs in tags (tags: expected {'env': 'prod'}, got {})" in text
