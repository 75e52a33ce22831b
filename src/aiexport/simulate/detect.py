"""Detection: the real `aiexport.intel` pipeline over the orders that shipped, capped by capacity.

The simulator hands the orders that shipped to Tier 2 destinations (where diversion through
shells and hubs happens; contract §1 columns, shells added by the evasive groups included) to
`aiexport.intel.investigate`, which never sees truth.json. The analysts then work the cases in
score order, as many as the scenario's enforcement capacity allows over the world's span
(`cases_per_year` × years). A worked case is a *find* when at least half of its orders are
planted evasion (the rule `bench/detect.py` uses); the evasive orders of finds are *caught*.
More capacity works a longer prefix of the same ranking, so it never catches less.

A `Detector` is any callable from an order table to ranked cases; tests may pass their own.
When `aiexport.intel` cannot be imported the simulator reports detection as unavailable rather
than guessing.

One detector across scenarios: a regulator does not retrain its entity-resolution model for
each policy it might adopt. The first detection run of a simulation (the first scenario listed,
by convention the baseline) trains the Splink model on the consignees of the orders it
received (lambda, u by random sampling, m by EM); every later run (the other scenarios and the
sweep points) scores its consignee pairs with those same parameters (`investigate(...,
model=...)`), so that differences between scenarios come from the trade, not from a model
re-estimated on each. It is also what makes detection affordable at a million orders: the
sampling and EM were most of each run's cost. (Term-frequency adjustments are still taken from
each run's own consignees, as Splink computes them at prediction time.)

`DetectionPool` runs the same pipeline in worker processes, so that one scenario's detection
runs while the next scenario's decisions are computed and two detections share the cores. Each
worker does exactly what `intel_detector` does (write the shipped orders to Parquet, run
`investigate` with the scenario's rules and the shared model, the first run training it), so
the cases, and every metric, are the same. Later runs wait for the first run's model.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aiexport.rules.ruleset import RuleSet


@dataclass(frozen=True)
class Case:
    case_id: str
    score: float
    order_ids: tuple[str, ...]


# Called with the shipped orders and the scenario's rule set (the analysts enforce the
# scenario's allowance: STRUCTURING is measured against it).
Detector = Callable[[pa.Table, RuleSet], Sequence[Case]]


def intel_detector() -> Detector | None:
    """The real pipeline, or None when `aiexport.intel.investigate` is not available.

    The detector is one detector: its first run trains the entity-resolution model, and later
    runs reuse it (see the module's notes)."""
    try:
        intel = importlib.import_module("aiexport.intel")
    except ImportError:
        return None
    investigate = getattr(intel, "investigate", None)
    if investigate is None:
        return None

    trained: list[Any] = []  # the model of the first run, once there is one

    def run(orders: pa.Table, rules: RuleSet | None = None) -> list[Case]:
        kw: dict[str, Any] = {} if rules is None else {"rules": rules}
        if trained:
            kw["model"] = trained[0]
        with tempfile.TemporaryDirectory(prefix="aiexport-sim-") as tmp:
            path = Path(tmp) / "orders.parquet"
            pq.write_table(orders, path)
            result = investigate(path, **kw)
        if not trained:
            trained.append(getattr(result, "model", None))
        return [_case(c) for c in _cases_of(result)]

    return run


Outcome = tuple[list[Case], float, float, Any]


def _investigate_file(path: str, rules: RuleSet, model: Any = None) -> Outcome:
    """Worker side of `DetectionPool`: the cases of one orders file, with wall and CPU seconds
    (CPU of the whole worker process, DuckDB's threads included) and the model used."""
    t0, c0 = time.perf_counter(), time.process_time()
    from aiexport.intel import investigate

    result = investigate(Path(path), rules=rules, model=model)
    cases = [_case(c) for c in _cases_of(result)]
    Path(path).unlink(missing_ok=True)
    return cases, time.perf_counter() - t0, time.process_time() - c0, result.model


def _warm() -> None:
    """Import the pipeline in a fresh worker while the caller computes decisions."""
    importlib.import_module("aiexport.intel")
    importlib.import_module("splink")


@dataclass(frozen=True)
class PooledCases:
    """What a worker returns: the ranked cases and what they cost."""

    cases: list[Case]
    seconds: float
    cpu_seconds: float


class DetectionPool:
    """The real pipeline in `workers` spawned processes; `submit` returns at once.

    Spawned, not forked: the parent holds Arrow thread pools and large buffers that a fork would
    copy into an unclear state. A worker imports the pipeline once and serves several runs (and
    keeps its memoised consignee normal forms between them).

    The first run submitted trains the entity-resolution model; later runs are handed to a
    worker once that model exists (a relay thread waits for it), as `intel_detector` does.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._tmp = tempfile.TemporaryDirectory(prefix="aiexport-sim-", dir=_scratch_dir())
        self._ex = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        self._relay = ThreadPoolExecutor(max_workers=16, thread_name_prefix="aiexport-relay")
        self._model: Future[Any] | None = None
        self._n = 0
        for _ in range(self.workers):
            self._ex.submit(_warm)

    def submit(self, orders: pa.Table, rules: RuleSet) -> Future[PooledCases]:
        done: Future[PooledCases] = Future()
        if not orders.num_rows:
            done.set_result(PooledCases([], 0.0, 0.0))
            return done
        self._n += 1
        path = Path(self._tmp.name) / f"orders-{self._n}.parquet"
        pq.write_table(orders, path)
        inner: Future[Outcome]
        if self._model is None:
            model: Future[Any] = Future()
            self._model = model
            inner = self._ex.submit(_investigate_file, str(path), rules)

            def publish(f: Future[Outcome]) -> None:
                if model.done():  # the pool was closed first
                    return
                exc = f.exception()
                if exc is not None:
                    model.set_exception(exc)
                else:
                    model.set_result(f.result()[3])

            inner.add_done_callback(publish)
        else:
            trained = self._model

            def later() -> Outcome:
                return self._ex.submit(
                    _investigate_file, str(path), rules, trained.result()
                ).result()

            inner = self._relay.submit(later)

        def relay(f: Future[Outcome]) -> None:
            exc = f.exception()
            if exc is not None:
                done.set_exception(exc)
            else:
                cases, wall, cpu, _model = f.result()
                done.set_result(PooledCases(cases, wall, cpu))

        inner.add_done_callback(relay)
        return done

    def close(self) -> None:
        if self._model is not None and not self._model.done():
            self._model.set_exception(RuntimeError("detection pool closed"))
        self._relay.shutdown(wait=True, cancel_futures=True)
        self._ex.shutdown(wait=True, cancel_futures=True)
        self._tmp.cleanup()

    def __enter__(self) -> DetectionPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def default_workers(jobs: int) -> int:
    """One worker per core, no more than there are detection runs."""
    return max(1, min(jobs, os.cpu_count() or 1))


def _scratch_dir() -> str | None:
    """RAM-backed scratch space for the hand-over files when there is some."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _cases_of(result: Any) -> list[Any]:
    if isinstance(result, dict):
        return list(result.get("cases", []))
    cases = getattr(result, "cases", result)
    return list(cases)


def _case(raw: Any) -> Case:
    get = raw.get if isinstance(raw, dict) else lambda k, d=None: getattr(raw, k, d)
    return Case(
        case_id=str(get("case_id", "")),
        score=float(get("score", 0.0)),
        order_ids=tuple(str(o) for o in get("order_ids", ()) or ()),
    )


@dataclass(frozen=True)
class Detection:
    cases: int  # cases the pipeline produced
    worked: int  # cases the analysts worked (capacity)
    finds: int  # worked cases that are at least half evasion
    caught_order_ids: frozenset[str]


def work_cases(cases: Sequence[Case], capacity: int, evasive_ids: frozenset[str]) -> Detection:
    ranked = sorted(cases, key=lambda c: (-c.score, c.case_id))
    worked = ranked[: max(0, capacity)]
    caught: set[str] = set()
    finds = 0
    for c in worked:
        if not c.order_ids:
            continue
        hits = [o for o in c.order_ids if o in evasive_ids]
        if 2 * len(hits) >= len(c.order_ids):
            finds += 1
            caught.update(hits)
    return Detection(len(cases), len(worked), finds, frozenset(caught))
