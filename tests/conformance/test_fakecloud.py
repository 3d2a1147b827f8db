"""FakeCloud: the world, the token, pages, faults, disks with Range, the mutation log."""

from __future__ import annotations

import httpx
import pytest

from hypersdk import ProviderType
from hypersdk_testing import FakeCloud, Fault, standard_world
from hypersdk_testing.strategies import POWER_STATES, VM_STATES

WORLD = standard_world(ProviderType("demo"), 45)


def request(
    cloud: FakeCloud, path: str = "/v1/machines", *, token: str | None = None, **headers: str
) -> httpx.Request:
    sent = {"Authorization": f"Bearer {cloud.token if token is None else token}", **headers}
    return httpx.Request("GET", f"https://api.test{path}", headers=sent)


def test_the_standard_world_is_deterministic_varied_and_aware() -> None:
    assert standard_world(ProviderType("demo"), 45) == WORLD
    assert len({vm.id for vm in WORLD}) == 45
    assert {vm.state for vm in WORLD} == set(VM_STATES)
    assert {vm.power_state for vm in WORLD} == set(POWER_STATES)
    assert any(".." in vm.name for vm in WORLD)
    assert all(vm.created_at is not None and vm.created_at.tzinfo is not None for vm in WORLD)


def test_intercept_rejects_a_missing_or_wrong_token() -> None:
    cloud = FakeCloud(WORLD)
    assert cloud.intercept(request(cloud)) is None
    rejected = cloud.intercept(request(cloud, token="nope"))
    assert rejected is not None
    assert rejected.status_code == 401
    old = cloud.token
    cloud.rotate_token()
    response = cloud.intercept(request(cloud, token=old))
    assert response is not None
    assert response.status_code == 401


def test_pages_are_capped_at_page_size() -> None:
    cloud = FakeCloud(WORLD, page_size=20)
    first = cloud.page(cloud.vms, number=1, per_page=200)
    assert len(first.items) == 20
    assert (first.next, first.last, first.total) == (2, 3, 45)
    last = cloud.page(cloud.vms, number=3)
    assert len(last.items) == 5
    assert last.next is None
    assert cloud.page([], number=1).last == 1


def test_faults_come_in_order_for_matching_requests_and_run_out() -> None:
    cloud = FakeCloud(WORLD)
    cloud.inject(Fault.rate_limited(1.5), on="/disk")
    cloud.inject(Fault.http(503), times=2)
    assert cloud.intercept(request(cloud)).status_code == 503  # type: ignore[union-attr]
    limited = cloud.intercept(request(cloud, "/v1/snapshots/1/disk"))
    assert limited is not None
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1.5")
    assert cloud.intercept(request(cloud)).status_code == 503  # type: ignore[union-attr]
    assert cloud.intercept(request(cloud)) is None
    assert [fault.status for _, fault in cloud.faults_served] == [503, 429, 503]


@pytest.mark.parametrize(
    ("fault", "error"),
    [(Fault.timeout(), httpx.ReadTimeout), (Fault.connection_reset(), httpx.RemoteProtocolError)],
)
def test_transport_faults_raise_what_httpx_raises(fault: Fault, error: type[Exception]) -> None:
    cloud = FakeCloud(WORLD)
    cloud.inject(fault, times=None)
    for _ in range(3):
        with pytest.raises(error):
            cloud.intercept(request(cloud))


def test_bad_bodies() -> None:
    cloud = FakeCloud(WORLD)
    cloud.inject(Fault.malformed_json())
    cloud.inject(Fault.wrong_shape(b"[]"))
    malformed = cloud.intercept(request(cloud))
    assert malformed is not None
    with pytest.raises(ValueError, match="Expecting"):
        malformed.json()
    shaped = cloud.intercept(request(cloud))
    assert shaped is not None
    assert shaped.json() == []


def test_disks_serve_ranges() -> None:
    cloud = FakeCloud(WORLD[:2], disk_size=20_000)
    vm_id = WORLD[0].id
    disk = cloud.disks[vm_id]
    assert len(disk) == 20_000
    assert disk != cloud.disks[WORLD[1].id]
    whole = cloud.serve_disk(request(cloud), vm_id)
    assert (whole.status_code, whole.read()) == (200, disk)
    tail = cloud.serve_disk(request(cloud, Range="bytes=15000-"), vm_id)
    assert tail.status_code == 206
    assert tail.headers["content-range"] == "bytes 15000-19999/20000"
    assert tail.read() == disk[15000:]
    suffix = cloud.serve_disk(request(cloud, Range="bytes=-10"), vm_id)
    assert suffix.read() == disk[-10:]
    assert cloud.serve_disk(request(cloud, Range="bytes=30000-"), vm_id).status_code == 416
    assert cloud.serve_disk(request(cloud), "no-such-vm").status_code == 404


def test_a_mid_body_fault_cuts_the_download_half_way() -> None:
    cloud = FakeCloud(WORLD[:1], disk_size=32 * 1024)
    cloud.inject(Fault.reset_mid_body())
    assert cloud.intercept(request(cloud)) is None  # not a fault intercept() serves
    response = cloud.serve_disk(request(cloud), WORLD[0].id)
    received: list[bytes] = []

    def read_all() -> None:
        received.extend(response.iter_bytes())

    with pytest.raises(httpx.ReadError):
        read_all()
    assert b"".join(received) == cloud.disks[WORLD[0].id][: 16 * 1024]
    again = cloud.serve_disk(request(cloud), WORLD[0].id)
    assert again.read() == cloud.disks[WORLD[0].id]


def test_leftovers_are_created_things_never_deleted() -> None:
    cloud = FakeCloud(WORLD)
    cloud.record("snapshot.created", id="s1")
    cloud.record("snapshot.created", id="s2")
    cloud.record("power.off", id=WORLD[0].id)
    cloud.record("snapshot.deleted", id="s1")
    assert [dict(m.details) for m in cloud.leftovers()] == [{"id": "s2"}]


def test_the_repr_shows_no_token() -> None:
    cloud = FakeCloud(WORLD)
    assert cloud.token not in repr(cloud)


def test_the_token_header_and_scheme_are_configurable() -> None:
    cloud = FakeCloud(WORLD, auth_header="X-Auth-Token", auth_scheme="")
    bare = httpx.Request("GET", "https://api.test/v1", headers={"X-Auth-Token": cloud.token})
    assert cloud.intercept(bare) is None
    assert cloud.intercept(request(cloud)) is not None  # a bearer header is not what it wants


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="VM ids must be unique"):
        FakeCloud([WORLD[0], WORLD[0]])


def test_a_stall_is_taken_before_routing_and_only_by_stall_faults() -> None:
    cloud = FakeCloud(WORLD)
    cloud.inject(Fault.http(500))
    cloud.inject(Fault.stall(), on="/machines")
    assert not cloud.stalls(request(cloud, "/v1/account"))
    assert cloud.stalls(request(cloud))
    assert not cloud.stalls(request(cloud))  # it was injected once
    assert cloud.intercept(request(cloud)).status_code == 500  # type: ignore[union-attr]
