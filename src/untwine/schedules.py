"""Weight schedules over training steps: constant, linear warm-up, cyclical annealing."""

from __future__ import annotations

from typing import Literal

Schedule = Literal["constant", "linear", "cyclical"]


def anneal(schedule: Schedule, step: int, target: float, period: int, ramp: float = 0.5) -> float:
    """The weight at `step` (0-based) that a schedule gives a term whose full weight is `target`.

    constant: `target` from the start. linear: rises from 0 to `target` over `period` steps,
    then stays. cyclical (Fu et al. 2019): restarts every `period` steps, rising from 0 to
    `target` over the first `ramp` fraction of each cycle and holding it for the rest.
    """
    if schedule == "constant":
        return target
    if schedule == "linear":
        return target * min(1.0, step / period)
    position = (step % period) / period
    return target * min(1.0, position / ramp)
