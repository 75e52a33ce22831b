"""Replaying a year of orders through the quotas, with the buyers' behaviour.

Exact integer arithmetic (milli-TPP) throughout. Orders are taken in (date, input position)
order, as `screen` does.

LPP (§ 740.29(d)): per consignee and calendar year, orders draw on the allowance until the first
order that would take the consignee over it; from then on that consignee's orders for the rest of
the year go another way (a buyer that has hit the allowance plans the rest of the year under a
license rather than squeezing small orders in). A legitimate buyer whose allowance binds within
`wait_window_days` of 31 December waits for the new year's allowance (its order ships on 1
January, delayed); otherwise it applies for a license. An evasive group never applies: its
order is refused.

Licenses: one application per order (Supp. No. 2 to part 748 (c)(3): the application carries the
purchase order, and BIS limits the license to it); orders citing a license already granted count
one application per license id. Review policy as the engine gave it: presumption of approval
within the destination's country allocation (granted while the allocation lasts, then policy of
denial: the buyer waits, which in the simulated horizon means refused), case by case (approved
when `case_by_case_approved`), presumption or policy of denial (refused). Granted licenses ship
after `license_review_days`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aiexport.simulate._static import (
    APPROVE,
    APPROVE_ALLOC,
    CASE_BY_CASE,
    DENY,
    FREE,
    LIC,
    LPP,
)
from aiexport.simulate.world import to_day

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


@dataclass
class Outcome:
    """Per-row result of the replay."""

    shipped: B
    refused: B
    applied: B  # a legitimate order that went to license review
    licensed: B  # shipped under a license granted in the simulation
    waited: B  # shipped on 1 January after waiting for the new year's allowance
    lpp: B  # shipped under LPP
    delay_days: npt.NDArray[np.float64]
    alloc_used: dict[int, int]  # milli-TPP licensed per allocation index
    alloc_denied: dict[int, int]  # milli-TPP refused because the allocation was met


def replay(
    *,
    days: npt.NDArray[np.int32],
    position: I64,
    tpp: I64,
    consignee: npt.NDArray[np.int32],
    evasive: B,
    cat: npt.NDArray[np.int8],
    fallback: npt.NDArray[np.int8],
    policy: npt.NDArray[np.int8],
    alloc: npt.NDArray[np.int32],
    alloc_limit: I64,
    lpp_limit: I64,
    wait_window_days: int,
    review_days: float,
    case_by_case_approved: bool,
) -> Outcome:
    n = len(days)
    year = _years(days)
    eff_day = days.astype(np.int64).copy()
    lpp_ok = np.zeros(n, dtype=bool)
    waited = np.zeros(n, dtype=bool)
    lpp_failed = np.zeros(n, dtype=bool)

    is_lpp = cat == LPP
    if is_lpp.any():
        pending = np.zeros(0, dtype=np.int64)  # rows waiting for this year's allowance
        lpp_rows = np.nonzero(is_lpp)[0]
        for y in [*np.unique(year[lpp_rows]).tolist(), int(year.max()) + 1]:
            own = lpp_rows[year[lpp_rows] == y]
            rows = np.concatenate([pending, own])
            if len(rows) == 0:
                continue
            first = np.concatenate(
                [np.zeros(len(pending), dtype=np.int64), np.ones(len(own), dtype=np.int64)]
            )
            order = np.lexsort((position[rows], days[rows], first, consignee[rows]))
            rows, first = rows[order], first[order]
            cons = consignee[rows]
            t = tpp[rows]
            starts = np.r_[0, np.nonzero(np.diff(cons))[0] + 1]
            cum = np.cumsum(t)
            base = np.repeat(cum[starts] - t[starts], np.diff(np.r_[starts, len(rows)]))
            cum = cum - base
            over = (cum > lpp_limit[rows]).astype(np.int64)
            # Once over, the rest of the consignee's year goes another way.
            grp = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows)]))
            seen = np.maximum.accumulate(over + grp * 2) - grp * 2
            fail = seen > 0
            ok_rows = rows[~fail]
            lpp_ok[ok_rows] = True
            fail_rows = rows[fail]
            was_pending = first[fail] == 0
            year_end = to_day(dt.date(int(y), 12, 31))
            can_wait = (
                ~evasive[fail_rows]
                & ~was_pending
                & (days[fail_rows].astype(np.int64) > year_end - wait_window_days)
                & (wait_window_days > 0)
            )
            new_pending = fail_rows[can_wait]
            lpp_failed[fail_rows[~can_wait]] = True
            jan1 = year_end + 1
            waited[new_pending] = True
            eff_day[new_pending] = jan1
            pending = new_pending
        waited &= lpp_ok
        # A row that waited and then failed in the new year falls back like any other.
        lpp_failed |= is_lpp & ~lpp_ok & ~lpp_failed

    shipped = np.zeros(n, dtype=bool)
    refused = np.zeros(n, dtype=bool)
    applied = np.zeros(n, dtype=bool)
    licensed = np.zeros(n, dtype=bool)
    shipped |= cat == FREE
    shipped |= lpp_ok
    to_free = lpp_failed & (fallback == FREE)
    shipped |= to_free
    wants_license = (cat == LIC) | (lpp_failed & (fallback == LIC))
    refused |= wants_license & evasive
    legit_lic = wants_license & ~evasive
    applied |= legit_lic
    refused |= legit_lic & (policy == DENY)
    cbc = legit_lic & (policy == CASE_BY_CASE)
    if case_by_case_approved:
        licensed |= cbc
    else:
        refused |= cbc
    licensed |= legit_lic & (policy == APPROVE)
    alloc_used: dict[int, int] = {}
    alloc_denied: dict[int, int] = {}
    with_alloc = np.nonzero(legit_lic & (policy == APPROVE_ALLOC))[0]
    if len(with_alloc):
        order = np.lexsort((position[with_alloc], eff_day[with_alloc], alloc[with_alloc]))
        rows = with_alloc[order]
        for a in np.unique(alloc[rows]).tolist():
            rs = rows[alloc[rows] == a]
            t = tpp[rs]
            limit = alloc_limit[rs]
            cum = np.cumsum(t)
            if (cum <= limit).all():
                granted = np.ones(len(rs), dtype=bool)
            else:
                granted = np.zeros(len(rs), dtype=bool)
                used = 0
                for i in range(len(rs)):
                    if used + int(t[i]) <= int(limit[i]):
                        used += int(t[i])
                        granted[i] = True
            licensed[rs[granted]] = True
            refused[rs[~granted]] = True
            alloc_used[int(a)] = int(t[granted].sum())
            alloc_denied[int(a)] = int(t[~granted].sum())
    shipped |= licensed
    delay = np.where(shipped, (eff_day - days).astype(np.float64), 0.0)
    delay[licensed] += review_days
    assert not (shipped & refused).any()
    assert (shipped | refused).all()
    return Outcome(
        shipped, refused, applied, licensed, waited, lpp_ok, delay, alloc_used, alloc_denied
    )


def _years(days: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    d = days.astype("datetime64[D]")
    return (d.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.int32)
