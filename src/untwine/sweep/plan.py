"""What a study will cost on this machine, before it runs: each distinct setting trained for a
few steps and its scoring run once, then multiplied out over the runs still to do."""

from __future__ import annotations

import json
import re
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from untwine import runs as run_files
from untwine.errors import UntwineWarning
from untwine.evaluate import evaluate
from untwine.sweep.pool import warn_if_busy, worker_threads
from untwine.sweep.runner import STORE, runs_to_do
from untwine.sweep.store import ResultStore
from untwine.sweep.study import Study, StudyRun
from untwine.train import train
from untwine.train.trainer import cpu_threads

PROBE_STEPS = 20  # steps timed per setting; the first log window (warm-up) is left out


@dataclass(frozen=True)
class SettingCost:
    """A setting's runs still to do, its measured speed, and the seconds each run will take;
    `rescored` more are finished but lack a score the study names, and are only scored."""

    setting: str
    runs: int
    images_per_s: float
    train_s: float
    score_s: float
    rescored: int = 0

    @property
    def total_s(self) -> float:
        return self.runs * (self.train_s + self.score_s) + self.rescored * self.score_s


def plan_study(
    study: Study, out: Path, *, workers: int = 1, only: Sequence[str] | None = None
) -> list[SettingCost]:
    """Time every setting with runs left under `out` (seeds share one timing), each on the
    threads a worker of `workers` gets; a run's scoring is timed once per distinct scoring.
    `only` counts just the runs whose names match its shell-style patterns."""
    left, rescored = _runs_left(study.select(only), out)
    scoring_only = {run.name for run in rescored}
    if left or rescored:
        warn_if_busy()
    threads = worker_threads(workers)
    settings: dict[str, list[StudyRun]] = {}
    for run in left + rescored:
        settings.setdefault(run.setting, []).append(run)
    scoring: dict[str, float] = {}
    costs = []
    with tempfile.TemporaryDirectory(prefix="untwine-plan-") as scratch:
        for i, group in enumerate(settings.values()):
            run = group[0]
            probe = Path(scratch) / f"probe{i}"
            speed = _images_per_s(run, probe, threads)
            score_key = json.dumps([run.config.data.to_dict(), run.metrics], sort_keys=True)
            if run.metrics and score_key not in scoring:
                started = time.perf_counter()
                with cpu_threads(threads):  # a worker scores on its share, as it trains
                    evaluate(probe, metrics=run.metrics, samples=study.samples)
                scoring[score_key] = time.perf_counter() - started
            images = run.config.train.steps * run.config.train.batch_size
            costs.append(
                SettingCost(
                    setting=re.sub(r"-s\d+$", "", run.name),
                    runs=sum(member.name not in scoring_only for member in group),
                    images_per_s=speed,
                    train_s=images / speed,
                    score_s=scoring.get(score_key, 0.0),
                    rescored=sum(member.name in scoring_only for member in group),
                )
            )
    return costs


def _runs_left(runs: list[StudyRun], out: Path) -> tuple[list[StudyRun], list[StudyRun]]:
    """Those of `runs` not yet done in `out`, and the finished ones to score again (see
    `runner.runs_to_do`)."""
    if not (out / STORE).is_file():
        return runs, []
    store = ResultStore(out / STORE)
    try:
        stored = {row["name"]: row for row in store.rows([run.name for run in runs])}
    finally:
        store.close()
    return runs_to_do(runs, stored)


def _images_per_s(run: StudyRun, probe: Path, threads: int) -> float:
    """Training images a second for `run`'s setting, from PROBE_STEPS steps after a warm-up."""
    window = PROBE_STEPS // 2
    short = replace(
        run.config.train,
        steps=PROBE_STEPS,
        log_every=window,
        checkpoint_every=PROBE_STEPS,
        eval_every=0,
        threads=threads,
    )
    with warnings.catch_warnings():  # a schedule outlasting the probe's steps is no news
        warnings.simplefilter("ignore", UntwineWarning)
        train(replace(run.config, train=short), probe, progress=False)
    return float(run_files.read_log(probe)[-1]["images_per_s"])
