"""Ids: unique, 32 hex digits; row ids ordered by their millisecond; never shared with a forked child."""

from __future__ import annotations

import os
import time

from oms.domain.ids import new_row_id, random_id


def test_ids_are_unique_hex_of_the_uuid_shape() -> None:
    ids = [new_row_id() for _ in range(20_000)]  # several refills of the random buffer
    assert len(set(ids)) == len(ids)
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids)


def test_ids_start_with_their_millisecond_so_later_ids_sort_later() -> None:
    before = time.time_ns() // 1_000_000
    first = new_row_id()
    time.sleep(0.003)
    second = new_row_id()
    assert before <= int(first[:12], 16) < int(second[:12], 16) <= time.time_ns() // 1_000_000
    assert first < second


def test_a_forked_child_does_not_reuse_the_parents_random_bits() -> None:
    new_row_id()  # the parent has a buffer of random digits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, "".join(new_row_id()[12:] for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 65536):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(new_row_id()[12:] for _ in range(50))
    child_parts = {child.decode()[i : i + 20] for i in range(0, 1000, 20)}
    parent_parts = {parent[i : i + 20] for i in range(0, 1000, 20)}
    assert len(child_parts) == 50 and not child_parts & parent_parts


def test_random_ids_are_random_from_their_first_digit() -> None:
    """Callers use a prefix of a random id as a short unique tag (e.g. the gateway's market data request ids)."""
    ids = [random_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids) and all(len(value) == 32 and int(value, 16) >= 0 for value in ids)
    assert len({value[:8] for value in ids}) > 4_990  # 32 random bits: a handful of collisions at most
