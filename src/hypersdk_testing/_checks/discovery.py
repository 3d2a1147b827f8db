"""LIST-*, GET-*, SEARCH-*: discovery returns exactly the world, however it is asked."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from hypersdk import ExportOptions, VMFilter, VMInfo, VMNotFoundError, search_matches
from hypersdk_testing._checks._registry import implements
from hypersdk_testing._harness import describe_error
from hypersdk_testing._world import UNKNOWN_VM_ID, default_world_sizes
from hypersdk_testing.strategies import filters_for, vm_filters, worlds_of_size

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from hypersdk_testing._harness import Harness, Session

_SHOWN = 5


def _ids(vms: Sequence[dict[str, object]]) -> list[object]:
    return [vm["id"] for vm in vms]


def _clip(items: Sequence[object]) -> str:
    shown = ", ".join(repr(item) for item in items[:_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")


def _shown_value(value: object) -> str:
    # Read-only mappings print as mappingproxy({...}); show what the author wrote.
    return repr(dict(value)) if isinstance(value, Mapping) else repr(value)


def difference(expected: Sequence[dict[str, object]], actual: Sequence[dict[str, object]]) -> str:
    """How ``actual`` differs from ``expected`` (VMs as dicts of compared fields), or ''.

    The first line says what kind of difference it is; the next ones name ids and fields.
    """
    if list(expected) == list(actual):
        return ""
    expected_ids, actual_ids = _ids(expected), _ids(actual)
    missing = [vm_id for vm_id in expected_ids if vm_id not in set(actual_ids)]
    extra = [vm_id for vm_id in actual_ids if vm_id not in set(expected_ids)]
    duplicated = sorted({str(i) for i in actual_ids if actual_ids.count(i) > 1})
    if missing or extra or duplicated:
        lines = [f"{len(actual)} VM(s) where {len(expected)} were expected"]
    elif expected_ids != actual_ids:
        lines = [f"the right {len(actual)} VM(s), in another order"]
    else:
        lines = [f"the right {len(actual)} VM(s), but with different field values"]
    if missing:
        lines.append(f"missing ids: {_clip(missing)}")
    if extra:
        lines.append(f"unexpected ids: {_clip(extra)}")
    if duplicated:
        lines.append(f"duplicated ids: {_clip(duplicated)}")
    if not missing and not extra and not duplicated and expected_ids != actual_ids:
        pairs = zip(expected_ids, actual_ids, strict=False)
        position = next(i for i, (a, b) in enumerate(pairs) if a != b)
        lines.append(
            f"order differs from the API's at position {position}: "
            f"expected id {expected_ids[position]!r}, got {actual_ids[position]!r}"
        )
    by_id = {vm["id"]: vm for vm in expected}
    for vm in actual:
        wanted = by_id.get(vm["id"])
        if wanted is None or wanted == vm:
            continue
        fields = [name for name in wanted if wanted[name] != vm.get(name)]
        shown = "; ".join(
            f"{name}: expected {_shown_value(wanted[name])}, got {_shown_value(vm.get(name))}"
            for name in fields[:4]
        )
        lines.append(f"VM {vm['id']!r} differs in {', '.join(fields)} ({shown})")
        lines.append(
            "if your API does not carry these fields as VMInfo has them, that is a suite "
            "setting: leave them out of compared_fields, or reshape them in representable()"
        )
        break
    return "\n  ".join(lines)


async def _call(
    h: Harness, label: str, call: Callable[[], Awaitable[list[VMInfo]]]
) -> list[VMInfo]:
    try:
        result: object = await call()
    except Exception as exc:
        hint = ""
        if "must be timezone-aware" in str(exc) or "VMInfo." in str(exc):
            hint = " (the provider built an invalid VMInfo from the API's data)"
        h.fail(
            expected=f"{label} to return a list of VMInfo",
            actual=f"it raised {describe_error(exc)}{hint}",
        )
    if not isinstance(result, list) or not all(isinstance(vm, VMInfo) for vm in result):
        h.fail(
            expected=f"{label} to return a list of VMInfo",
            actual=f"{type(result).__name__}: {result!r:.200}",
        )
    return result


def _sizes(h: Harness) -> tuple[int, ...]:
    return tuple(h.suite.world_sizes or default_world_sizes(h.suite.page_size))


@implements("LIST-COMPLETE")
def list_complete(h: Harness) -> None:
    for size in _sizes(h):

        def check(world: list[VMInfo], size: int = size) -> None:
            world = [h.suite.representable(vm) for vm in world]

            async def body() -> None:
                async with h.session(world) as session:
                    listed = await _call(h, "list_vms()", session.provider.list_vms)
                    problem = difference(h.expected(world), h.expected(listed))
                    if problem:
                        h.fail(
                            expected=f"the world's {len(world)} VMs, in order",
                            actual=problem,
                            context=f"world of {size} VMs, API page size {h.suite.page_size}",
                        )

            h.run(body)

        h.for_all(worlds_of_size(h.provider_type, size), check)


@implements("LIST-STABLE")
def list_stable(h: Harness) -> None:
    world = h.world(2 * h.suite.page_size + 1)

    async def body() -> None:
        async with h.session(world) as session:
            first = await _call(h, "list_vms()", session.provider.list_vms)
            second = await _call(h, "list_vms() again", session.provider.list_vms)
            problem = difference(
                [h.comparable(vm) for vm in first], [h.comparable(vm) for vm in second]
            )
            if problem or first != second:
                h.fail(
                    expected="the second listing to equal the first",
                    actual=problem or "the VMInfo objects differ in fields not compared",
                )

    h.run(body)


@implements("LIST-PROVIDER-TYPE")
def list_provider_type(h: Harness) -> None:
    async def body() -> None:
        async with h.session(h.world(3)) as session:
            listed = await _call(h, "list_vms()", session.provider.list_vms)
            wrong = [vm for vm in listed if vm.provider != session.provider.type]
            if wrong:
                h.fail(
                    expected=f"VMInfo.provider == {session.provider.type!r} for every VM",
                    actual=f"{len(wrong)} VM(s) say otherwise, e.g. {wrong[0].provider!r}",
                )

    h.run(body)


def _explicit_world(h: Harness) -> list[VMInfo]:
    """A world whose VMs make each filter and search rule tell right from wrong.

    Names that probe the glob's anchoring and case, tags that share a key with different
    values, a bare (empty-valued) tag and a tag value differing only in case.
    """
    import attrs

    world = h.world(h.suite.page_size + 1)
    shaped = [
        ("web-01", {"env": "prod", "team": "web"}),
        ("Web-02", {"env": "dev", "team": "web"}),
        ("db-web-03", {"env": "prod"}),
        ("cache-04", {"env": "", "team": "Web"}),
    ]
    for index, (name, tags) in enumerate(shaped[: len(world)]):
        world[index] = attrs.evolve(world[index], name=name, tags=tags)
    return [h.suite.representable(vm) for vm in world]


def _explicit_filters(world: list[VMInfo]) -> list[VMFilter]:
    """The filters every plugin meets first (generated ones follow): one rule each."""
    filters = [
        VMFilter(name_pattern="web-0"),  # anchored at both ends: no VM is named that
        VMFilter(name_pattern="eb-01"),
        VMFilter(name_pattern="WEB-*"),  # case-insensitive, anchored at the start
        VMFilter(tags={"env": "prod", "team": "web"}),  # every tag, not any
        VMFilter(tags={"env": "prod"}),  # the value counts, not only the key
        VMFilter(tags={"env": ""}),  # an empty value is a bare tag, not "any value"
        VMFilter(tags={"team": "web"}),  # tag values are exact: "Web" is another value
    ]
    for vm in world:
        if vm.location:
            filters.append(VMFilter(location=vm.location.swapcase()))
            break
    for vm in world:
        if vm.state:
            filters.append(VMFilter(state=vm.state.upper()))
            break
    return filters


async def _check_filters(
    h: Harness,
    session: Session,
    world: list[VMInfo],
    filters: Sequence[VMFilter],
    since: int | None = None,
) -> None:
    for vm_filter in filters:
        listed = await _call(
            h,
            f"list_vms({vm_filter!r})",
            functools.partial(session.provider.list_vms, vm_filter),
        )
        wanted = [vm for vm in world if vm_filter.matches(vm)]
        problem = difference(h.expected(wanted), h.expected(listed))
        if problem:
            h.fail(
                expected=f"the {len(wanted)} VM(s) {vm_filter!r}.matches() accepts",
                actual=problem,
                context=f"world of {len(world)} VMs",
                since=since,
            )


@implements("LIST-FILTER")
def list_filter(h: Harness) -> None:
    size = h.suite.page_size + 1
    explicit = _explicit_world(h)

    async def explicit_cases() -> None:
        async with h.session(explicit) as session:
            await _check_filters(h, session, explicit, _explicit_filters(explicit), since=2)

    h.run(explicit_cases)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[list[VMInfo], list[VMFilter]]:
        world = [h.suite.representable(vm) for vm in draw(worlds_of_size(h.provider_type, size))]
        filters = [draw(filters_for(world)) for _ in range(3)]
        filters.append(draw(vm_filters))
        # An empty filter proves nothing a listing does not: the explicit cases cover it.
        return world, [vm_filter for vm_filter in filters if not vm_filter.is_empty]

    def check(case: tuple[list[VMInfo], list[VMFilter]]) -> None:
        world, filters = case

        async def body() -> None:
            async with h.session(world) as session:
                await _check_filters(h, session, world, filters)

        h.run(body)

    h.for_all(cases(), check)


@implements("GET-AGREES")
def get_agrees(h: Harness) -> None:
    world = h.world(h.suite.page_size + 1)

    async def body() -> None:
        async with h.session(world) as session:
            listed = await _call(h, "list_vms()", session.provider.list_vms)
            for vm in listed:
                try:
                    got: object = await session.provider.get_vm(vm.id)
                except Exception as exc:
                    h.fail(
                        expected=f"get_vm({vm.id!r}) to return the VM list_vms() returned",
                        actual=f"it raised {describe_error(exc)}",
                    )
                if got != vm:
                    problem = (
                        difference([h.comparable(vm)], [h.comparable(got)])
                        if isinstance(got, VMInfo)
                        else repr(got)
                    )
                    h.fail(
                        expected=f"get_vm({vm.id!r}) == the list_vms() entry",
                        actual=problem or "they differ in fields not compared",
                    )

    h.run(body)


def _near_misses(ids: Sequence[str]) -> list[str]:
    """Ids that look like existing ones but are not: prefixes, suffixes, case variants.

    A ``get_vm`` that matches by prefix, substring or case-insensitively finds a VM for
    them; a correct one raises VMNotFoundError.
    """
    existing = set(ids)
    probes: list[str] = []
    for vm_id in ids:
        for probe in (vm_id[:-1], vm_id[1:], vm_id.upper(), vm_id.lower(), vm_id.swapcase()):
            if probe and probe.strip() == probe and probe not in existing and probe not in probes:
                probes.append(probe)
    return probes


@implements("GET-NOT-FOUND")
def get_not_found(h: Harness) -> None:
    async def body() -> None:
        async with h.session(h.world(3)) as session:
            ids = [vm.id for vm in session.cloud.vms]
            probes = [UNKNOWN_VM_ID, *_near_misses(ids)]
            for index, probe in enumerate(probes):
                since = 1 if index == 0 else 2  # contract 2 probes the near misses
                try:
                    got = await session.provider.get_vm(probe)
                except VMNotFoundError:
                    continue
                except Exception as exc:
                    h.fail(
                        expected=f"VMNotFoundError from get_vm({probe!r})",
                        actual=describe_error(exc),
                        since=since,
                    )
                near = f" (existing ids: {_clip(ids)})" if index else ""
                h.fail(
                    expected=f"VMNotFoundError from get_vm({probe!r}){near}",
                    actual=f"it returned {got!r:.200}",
                    since=since,
                )
            if h.capabilities.supported_formats:
                await _export_unknown(h, session)

    h.run(body)


async def _export_unknown(h: Harness, session: Session) -> None:
    # Contract 2: exporting an unknown VM is "not found" too, and writes nothing.
    out = h.tmp_path / "export-unknown"
    options = ExportOptions(output_path=out, format=h.capabilities.supported_formats[0])
    expected = f"VMNotFoundError from export_vm({UNKNOWN_VM_ID!r}, ...), nothing written"
    try:
        result = await session.provider.export_vm(UNKNOWN_VM_ID, options)
    except VMNotFoundError:
        pass
    except Exception as exc:
        h.fail(expected=expected, actual=describe_error(exc), since=2)
    else:
        h.fail(expected=expected, actual=f"it returned {result!r:.200}", since=2)
    left = sorted(str(path.relative_to(out)) for path in out.rglob("*")) if out.exists() else []
    if left:
        h.fail(expected=expected, actual=f"it left {_clip(left)} in output_path", since=2)


def _queries(world: list[VMInfo]) -> st.SearchStrategy[str]:
    if not world:
        return st.sampled_from(["", "web", "zz-no-such-thing"])

    @st.composite
    def build(draw: st.DrawFn) -> str:
        vm = draw(st.sampled_from(world))
        fields = [
            vm.id,
            vm.name,
            vm.location,
            vm.state,
            *vm.ip_addresses,
            *vm.tags,
            *vm.tags.values(),
        ]
        words = [word for field in fields for word in field.split()] or [vm.id]
        word = draw(st.sampled_from(words))
        start = draw(st.integers(0, max(0, len(word) - 1)))
        term = word[start : start + draw(st.integers(1, 6))]
        # Empty and unmatched queries are explicit cases; generated ones match something.
        shape = draw(st.sampled_from(["plain", "upper", "two", "mixed"]))
        if shape == "upper":
            return term.upper()
        if shape == "two":
            return f"{term} {draw(st.sampled_from(words))}"
        if shape == "mixed":  # a term of this VM and one of another: all-of, not any-of
            other = draw(st.sampled_from(world))
            return f"{term} {draw(st.sampled_from([other.name, other.location or other.id]))}"
        return term

    return build()


_EXPLICIT_QUERIES = (
    "web prod",  # every term must match: Web-02 (env=dev) has only "web"
    "WEB-0 team",
    "db-web",
    "  ",  # no terms: every VM
    "zz-no-such-thing",
)


@implements("SEARCH-SEMANTICS")
def search_semantics(h: Harness) -> None:
    size = h.suite.page_size + 1
    explicit = _explicit_world(h)

    async def explicit_cases() -> None:
        async with h.session(explicit) as session:
            await _check_searches(h, session, explicit, _EXPLICIT_QUERIES, since=2)

    h.run(explicit_cases)

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[list[VMInfo], list[str]]:
        world = [h.suite.representable(vm) for vm in draw(worlds_of_size(h.provider_type, size))]
        return world, [draw(_queries(world)) for _ in range(4)]

    def check(case: tuple[list[VMInfo], list[str]]) -> None:
        world, queries = case

        async def body() -> None:
            async with h.session(world) as session:
                await _check_searches(h, session, world, queries)

        h.run(body)

    h.for_all(cases(), check)


async def _check_searches(
    h: Harness,
    session: Session,
    world: list[VMInfo],
    queries: Sequence[str],
    since: int | None = None,
) -> None:
    for query in queries:
        found = await _call(
            h,
            f"search_vms({query!r})",
            functools.partial(session.provider.search_vms, query),
        )
        wanted = [vm for vm in world if search_matches(vm, query)]
        problem = difference(h.expected(wanted), h.expected(found))
        if problem:
            h.fail(
                expected=f"the {len(wanted)} VM(s) that search_matches(vm, {query!r}) accepts",
                actual=problem,
                context=f"world of {len(world)} VMs",
                since=since,
            )
