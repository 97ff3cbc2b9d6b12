"""Run a study: train and score each of its runs not yet done, recording each as it finishes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from untwine.allocator import reuse_freed_memory
from untwine.config import resolve_config
from untwine.errors import UntwineError, UntwineWarning
from untwine.metrics import METRICS, parse_metrics
from untwine.sweep.cluster import run_on_ray
from untwine.sweep.pool import run_in_pool, warn_if_busy
from untwine.sweep.store import ResultStore
from untwine.sweep.study import Study, StudyRun
from untwine.sweep.tables import write_tables

STORE = "study.db"
LOCK = "study.lock"
RUNS = "runs"


def run_study(
    study: Study,
    out: str | Path,
    *,
    workers: int | None = None,
    backend: Literal["local", "ray"] = "local",
    address: str | None = None,
    progress: bool = False,
    on_result: Callable[[dict[str, Any], int], None] | None = None,
    on_start: Callable[[list[str], int | None, list[str]], None] | None = None,
    wait: bool = False,
    only: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Train and score every run of `study` under `out`; returns each run's row.

    `backend="local"` runs `workers` (default 1) at a time on this machine; `"ray"` runs each
    as a task on the Ray cluster at `address` (see `cluster.run_on_ray`), at most `workers` at
    once if given. Finished runs are never redone; a run cut short resumes from its
    checkpoint; failed runs are tried again; a finished run that lacks a score its study now
    names is scored again (with all of its metrics, as a fresh run is), not retrained.
    `out/study.db` holds the rows, `out/results.csv`
    and `out/results.md` the tables (rewritten after each run), `out/runs/NAME` each run.
    `on_start(names, jobs, rescored)` sees the runs about to train or be scored, once the study
    is this driver's, how many run at a time (None: as many as the Ray cluster takes) and which
    of them are finished runs to be scored again;
    `on_result(row, left)` sees each run as it ends, and how many are left to end. One
    driver at a time runs a study directory: another is refused, or with `wait=True` waits.
    `only` (shell-style patterns) trains just the runs whose names match; the tables still list
    every run.
    """
    if workers is not None and workers < 1:
        raise UntwineError(f"workers must be at least 1, got {workers}")
    if backend not in ("local", "ray"):
        raise UntwineError(f"unknown sweep backend {backend!r}; accepted: local, ray")
    chosen = {run.name for run in study.select(only)}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UntwineError(f"output path {out} is a file; give a directory for the study")
    out.mkdir(parents=True, exist_ok=True)
    with study_lock(out, wait=wait):
        return _run(study, out, chosen, workers, backend, address, progress, on_start, on_result)


def _run(
    study: Study,
    out: Path,
    chosen: set[str],
    workers: int | None,
    backend: str,
    address: str | None,
    progress: bool,
    on_start: Callable[[list[str], int | None, list[str]], None] | None,
    on_result: Callable[[dict[str, Any], int], None] | None,
) -> list[dict[str, Any]]:
    store = ResultStore(out / STORE)
    try:
        store.add(study.runs)
        names = [run.name for run in study.runs]
        stored = {row["name"]: row for row in store.rows(names)}
        unfinished, finished_lacking = runs_to_do(
            [run for run in study.runs if run.name in chosen], stored
        )
        rescored = [run.name for run in finished_lacking]
        due = {run.name for run in unfinished} | set(rescored)
        todo = [run for run in study.runs if run.name in due]  # in the study's order
        left = {run.name for run in todo}
        groups = _seed_groups(study)

        def record(row: dict[str, Any]) -> None:
            if row["status"] == "done":
                if row["name"] in rescored:  # scored again: its training time is the first one
                    before = stored[row["name"]]
                    row = {**row, "metrics": {**before["metrics"], **row["metrics"]}}
                    row["train_s"] = before["train_s"]
                store.finish(row["name"], row["metrics"], row["train_s"])
                group = next(g for g in groups if row["name"] in g)
                add_agreement(study, store, out, [group])
            elif row["name"] not in rescored:  # a finished run whose rescoring failed stays done
                store.fail(row["name"], row["error"])
            write_tables(study, store.rows(names), out)
            left.remove(row["name"])
            if on_result:
                on_result(row, len(left))

        in_process = backend == "local" and (workers or 1) == 1
        calls = [
            (
                run.config.to_dict(),
                str((out / RUNS / run.name).absolute()),  # a Ray task runs in a folder of its own
                run.metrics,
                study.samples,
                progress and in_process,
            )
            for run in todo
        ]
        unscored = [  # groups done before UDR was scored, or by an older untwine
            group
            for group in groups
            if any("udr" not in row["metrics"] for row in store.rows(group) if row["metrics"])
        ]
        add_agreement(study, store, out, unscored)
        write_tables(study, store.rows(names), out)
        if not calls:
            return store.rows(names)
        if backend == "ray":
            if on_start:
                on_start([run.name for run in todo], workers, rescored)
            devices = [run.config.train.device for run in todo]
            run_on_ray(
                train_and_score, calls, record, address=address, devices=devices, limit=workers
            )
        else:
            jobs = min(workers or 1, len(calls))
            if on_start:
                on_start([run.name for run in todo], jobs, rescored)
            warn_if_busy()
            run_in_pool(train_and_score, calls, jobs, record)
        return store.rows(names)
    finally:
        store.close()


def runs_to_do(
    runs: list[StudyRun], stored: dict[str, dict[str, Any]]
) -> tuple[list[StudyRun], list[StudyRun]]:
    """Those of `runs` not finished by their rows in `stored` (by name; no row: not begun),
    and the finished ones that lack a score their study names, to be scored again."""
    unfinished, lacking = [], []
    for run in runs:
        row = stored.get(run.name)
        if row is None or row["status"] != "done":
            unfinished.append(run)
        elif lacking_scores(run, row["metrics"] or {}):
            lacking.append(run)
    return unfinished, lacking


def lacking_scores(run: StudyRun, scores: dict[str, Any]) -> list[str]:
    """The metrics `run`'s study names for it whose main score `scores` lacks ("all" asks
    for whatever can run, so it lacks nothing)."""
    if not run.metrics or run.metrics == "all":
        return []
    return [name for name in parse_metrics(run.metrics) if METRICS[name].main not in scores]


def add_agreement(study: Study, store: ResultStore, out: Path, groups: list[list[str]]) -> None:
    """Score each group of runs that differ only by seed with UDR (`evaluate.agreement`),
    once two or more are done, into each run's metrics as `udr`. Only for a scored study;
    a group that cannot be compared (a run folder gone, say) is named in a warning."""
    from untwine.evaluate import agreement

    if not study.metrics:
        return
    for group in groups:
        done = [row["name"] for row in store.rows(list(group)) if row["status"] == "done"]
        if len(done) < 2:
            continue
        try:
            scores = agreement([out / RUNS / name for name in done], samples=study.samples)
        except UntwineError as error:
            warnings.warn(f"UDR of {', '.join(done)}: {error}", UntwineWarning, stacklevel=2)
            continue
        for name, score in zip(done, scores, strict=True):
            store.add_scores(name, {"udr": round(score, 6)})


def _seed_groups(study: Study) -> list[list[str]]:
    """The study's runs grouped by their config less train.seed, in grid order."""
    groups: dict[str, list[str]] = {}
    for run in study.runs:
        groups.setdefault(run.setting, []).append(run.name)
    return list(groups.values())


@contextlib.contextmanager
def study_lock(out: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold `out/study.lock` while a driver runs the study; the system drops it if we die.

    A second driver would train every unfinished run a second time, into the same folders.
    """
    with open(out / LOCK, "a+") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            if not wait:
                raise UntwineError(
                    f"{out} is being run by another untwine sweep ({holder}); let it finish, or "
                    "pass --wait to start when it does"
                ) from None
            print(f"waiting for the sweep that holds {out} ({holder})", file=sys.stderr)
            fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.ctime()}\n")
        file.flush()
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def train_and_score(
    config: dict[str, Any], run_dir: str, metrics: str | None, samples: int, progress: bool
) -> dict[str, Any]:
    """Train one run (resuming it if cut short) and score it; a failure becomes the row's error."""
    from untwine.evaluate import evaluate
    from untwine.train import resolve_device, train

    reuse_freed_memory()  # a worker process, or a Ray task's
    name = Path(run_dir).name
    started = time.perf_counter()
    try:
        run_config = resolve_config(config)
        train(run_config, run_dir, progress=progress)
        train_s = round(time.perf_counter() - started, 1)
        device = str(resolve_device(run_config.train.device))
        scores = {}
        if metrics:
            scores = evaluate(run_dir, metrics=metrics, samples=samples, device=device)
    except Exception as error:  # one failed run must not stop the study: it is recorded
        text = str(error) if isinstance(error, UntwineError) else f"{type(error).__name__}: {error}"
        return {"name": name, "status": "failed", "error": text.splitlines()[0]}
    return {"name": name, "status": "done", "metrics": scores, "train_s": train_s}
