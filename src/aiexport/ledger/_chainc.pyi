"""Types of `_chainc.c`: `Writer._chain_py`'s loop, compiled (the same arguments' meaning)."""

from collections.abc import Callable, Sequence
from typing import Any

def chain_batch(
    requests: Sequence[Any],
    make_shape: Callable[[Any], tuple[Any, ...] | None],
    shapes: dict[str, tuple[Any, ...]],
    old_keys: set[str],
    seq: int,
    prev_hex: str,
    head: str,
    per: int,
    holds: list[tuple[Any, ...]] | None,
    txn: str,
    expires_at: str | None,
) -> (
    tuple[
        list[list[Any]],
        list[list[Any]],
        list[tuple[str, int, int]],
        set[str],
        str,
        int,
        list[int],
        list[int],
    ]
    | None
): ...
def batch_texts(requests: Sequence[Any]) -> tuple[list[str], set[str], set[str], set[str]]: ...
