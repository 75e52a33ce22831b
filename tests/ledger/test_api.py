"""The public API of `aiexport.ledger` is explicit and complete."""

from __future__ import annotations

import aiexport.ledger as ledger


def test_all_is_complete() -> None:
    public = {n for n in dir(ledger) if not n.startswith("_") and n not in {"annotations"}}
    modules = {n for n in public if type(getattr(ledger, n)).__name__ == "module"}
    assert len(set(ledger.__all__)) == len(ledger.__all__)
    assert set(ledger.__all__) == public - modules
