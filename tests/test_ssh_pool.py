"""The SSH connection pool's bookkeeping, with fake transports: idle connections beyond
the bound close least recently used first, one in use never does, and a jump host stays
open while a connection goes through it. (The real thing: tests/integration/test_ssh*.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from engine.fleet._ssh_config import ConnectFailed, Endpoint, SshOptions
from engine.fleet._ssh_pool import Connection, SshPool


class FakeTransport:
    def __init__(self) -> None:
        self.open = True

    def is_active(self) -> bool:
        return self.open

    def close(self) -> None:
        self.open = False


class FakePool(SshPool):
    """The real pool with its network part replaced: refuses hosts named in `refuse`."""

    def __init__(self, max_idle: int, refuse: tuple[str, ...] = ()) -> None:
        super().__init__(SshOptions(), max_idle)
        self.refuse = refuse

    def _socket(self, ep: Endpoint, via: Connection | None) -> Any:
        if ep.address in self.refuse:
            raise ConnectFailed("unreachable", f"connection to {ep.address} refused")
        return FakeTransport()

    def _handshake(self, ep: Endpoint, sock: Any) -> Any:
        return FakeTransport()


def ep(name: str, jump: Endpoint | None = None) -> Endpoint:
    return Endpoint(name, name, 22, "ops", jump=jump)


def use(pool: SshPool, endpoint: Endpoint) -> Connection:
    conn = pool.get(endpoint)
    pool.release(conn)
    return conn


def open_addresses(pool: SshPool) -> list[str]:
    return sorted(c.endpoint.address for c in pool._conns.values())


def test_idle_connections_beyond_the_bound_close_least_recently_used_first() -> None:
    pool = FakePool(max_idle=2)
    a, b = use(pool, ep("a")), use(pool, ep("b"))
    assert use(pool, ep("a")) is a  # reused, and now the most recently used
    c = use(pool, ep("c"))
    assert open_addresses(pool) == ["a", "c"]
    assert not b.transport.open and a.transport.open and c.transport.open
    assert pool.opened == 3


def test_a_connection_in_use_is_never_closed_as_idle() -> None:
    pool = FakePool(max_idle=1)
    busy = pool.get(ep("busy"))
    for name in ("x", "y", "z"):
        use(pool, ep(name))
    assert busy.transport.open and open_addresses(pool) == ["busy", "z"]
    pool.release(busy)
    assert open_addresses(pool) == ["busy"]


def test_a_jump_host_stays_open_while_a_connection_goes_through_it() -> None:
    pool = FakePool(max_idle=1)
    bastion = ep("bastion")
    first = use(pool, ep("t1", bastion))
    assert open_addresses(pool) == ["bastion", "t1"]  # t1 idle; the bastion in use by t1
    use(pool, ep("t2", bastion))
    assert not first.transport.open
    assert open_addresses(pool) == ["bastion", "t2"]
    other = use(pool, ep("other"))  # t2 closes, so the bastion becomes idle: the most recently
    assert open_addresses(pool) == ["bastion"]  # ... and `other` the least recently used
    assert not other.transport.open
    pool.close()
    assert pool._conns == {}


def test_a_failed_connection_through_a_jump_host_leaves_it_idle() -> None:
    pool = FakePool(max_idle=0, refuse=("down",))
    with pytest.raises(ConnectFailed):
        pool.get(ep("down", ep("bastion")))
    assert open_addresses(pool) == []  # the bastion was released, hence closed (max_idle 0)
