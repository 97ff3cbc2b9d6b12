"""Run many training calls on this machine, N at a time, each worker on its share of the cores.

Ctrl-C (a terminal's, or a SIGINT sent to the parent alone) stops every running call the way a
training run stops, its step saved, and starts no queued one; the parent then raises
KeyboardInterrupt. A worker whose parent dies saves its step and exits.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

from untwine.errors import UntwineWarning


def run_in_pool(
    fn: Callable[..., Any], calls: Sequence[tuple], jobs: int, done: Callable[[Any], None]
) -> None:
    """`done(fn(*args))` for each `args` in `calls`, `jobs` at a time (in this process for 1).

    `fn` must be importable by name (a module-level function): workers are spawned. `done` runs
    in this process, in the order the calls finish.
    """
    if jobs == 1:
        for args in calls:
            done(fn(*args))
        return
    threads = worker_threads(jobs)
    with ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(threads, os.getpid()),
    ) as pool:
        futures = [pool.submit(_work, fn, *args) for args in calls]
        try:
            for future in as_completed(futures):
                done(future.result())
        except KeyboardInterrupt:  # a terminal's Ctrl-C, or a SIGINT sent to this process alone
            for worker in multiprocessing.active_children():
                os.kill(worker.pid, signal.SIGINT)
            raise


def worker_threads(jobs: int) -> int:
    """Each of `jobs` workers' share of the cores (on two cores, two 1-thread runs beat one)."""
    return max((os.cpu_count() or 1) // jobs, 1)


def warn_if_busy() -> None:
    """Say so when other work already keeps half this machine's cores running: the sweep's
    workers take every core between them, so both would crawl."""
    cores, busy = os.cpu_count() or 1, busy_cores()
    if busy and busy >= cores / 2:
        warnings.warn(
            f"other work keeps {busy} of this machine's {cores} cores busy: the runs will share "
            "them and train (and --plan time them) slower; wait for it to end, or give the sweep "
            f"the rest (--workers 1, train.threads: {max(cores - busy, 1)} in the study's base)",
            UntwineWarning,
            stacklevel=3,
        )


def busy_cores(samples: int = 5, interval_s: float = 0.05) -> int:
    """Cores other processes keep busy now: the fewest running besides this one over a few
    looks at /proc/loadavg (a moment's spike is not load); 0 where the system does not say."""
    fewest = None
    for look in range(samples):
        if look:
            time.sleep(interval_s)
        try:
            running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
        except (OSError, IndexError):
            return 0
        others = int(running) - 1  # this process is running while it reads
        fewest = others if fewest is None else min(fewest, others)
        if fewest <= 0:  # an idle look: no later one can read fewer
            return 0
    return fewest


def _start_worker(threads: int, parent: int) -> None:
    """Train on a share of the cores, and stop (checkpointing) if the parent dies."""
    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # between calls; `_work` listens during one

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)  # the trainer saves its step, then stops
        time.sleep(10)  # its report to the dead parent blocks: leave once the step is saved
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


_stopping = False  # in a worker: a Ctrl-C has stopped one of its calls


def _work(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a worker: Ctrl-C stops it, its step saved, and the worker starts no more."""
    global _stopping
    if _stopping:
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn(*args)
    except KeyboardInterrupt:
        _stopping = True
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
