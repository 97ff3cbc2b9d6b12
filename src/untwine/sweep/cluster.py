"""Run many training calls as tasks on a Ray cluster, for studies that outgrow one machine.

Each call is one task asking for one CPU, and one GPU when its run trains on `cuda`, or on
`auto` and the cluster has GPUs (a task that asks for none sees none). The driver, this
process, keeps the results store; the runs write their directories where the tasks run, so the
study directory must be on storage every node of the cluster sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from untwine.errors import UntwineError


def run_on_ray(
    fn: Callable[..., Any],
    calls: Sequence[tuple],
    done: Callable[[Any], None],
    *,
    address: str | None = None,
    devices: Sequence[str] = (),
    limit: int | None = None,
) -> None:
    """`done(fn(*args))` for each `args` in `calls`, each a task on the Ray cluster at `address`.

    `address` is Ray's: None joins the cluster `RAY_ADDRESS` or `ray start` on this machine
    names and otherwise starts one here, `"local"` always starts one here. Call `i` trains
    on `devices[i]` (`auto`, `cpu` or `cuda`; default `cpu`); at most `limit` calls run at
    once (default: as many as the cluster fits). Ctrl-C cancels every task (a running one
    stops at a saved step) and raises KeyboardInterrupt here.
    """
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR")
    running: list[Any] = []
    try:
        gpus = gpu_requests(devices, ray.cluster_resources().get("GPU", 0))
        task = ray.remote(num_cpus=1)(fn)
        queue = list(enumerate(calls))
        while queue or running:
            while queue and (limit is None or len(running) < limit):
                i, args = queue.pop(0)
                count = gpus[i] if i < len(gpus) else 0
                running.append(task.options(num_gpus=count).remote(*args))
            ready, running = ray.wait(running, num_returns=1)
            done(ray.get(ready[0]))
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt: the trainer saves its step
        for ref in running:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=60)
        raise
    finally:
        if started:
            ray.shutdown()


def gpu_requests(devices: Sequence[str], cluster_gpus: float) -> list[int]:
    """GPUs each run's task asks for: one on `cuda`, one on `auto` if the cluster has any."""
    if "cuda" in devices and cluster_gpus < 1:
        raise UntwineError(
            "a run trains on train.device=cuda but the Ray cluster has no GPU; "
            "use auto or cpu, or add GPU nodes"
        )
    return [int(device == "cuda" or (device == "auto" and cluster_gpus >= 1)) for device in devices]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UntwineError(
            "--backend ray needs Ray, which is not installed: pip install 'untwine[ray]'"
        ) from None
    return ray
