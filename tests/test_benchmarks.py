"""The benchmarks: quality on a tiny budget end to end, its table, that a rerun resumes, and
the rotation-preference and position-angle calculations against hand values."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from untwine import runs

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "quality.py"


def _quality(out, *extra, metrics="mig"):
    args = ["--models", "vae,infogan", "--seeds", "0", "--images", "32", "--batch-size", "8"]
    args += ["--samples", "100", "--metrics", metrics, "--out", str(out), *extra]
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600
    )


def test_quality_writes_rows_and_a_table_and_a_rerun_keeps_them(tmp_path):
    first = _quality(tmp_path, metrics="mig,mig_chen")
    assert first.returncode == 0, first.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["model"], r["seed"], r["steps"], r["images"]) for r in rows] == [
        ("vae", 0, 4, 32),
        ("infogan", 0, 4, 32),
    ]
    assert all(0 <= r["mig"] <= 1 and r["images_per_s"] > 0 for r in rows)
    factors = ["shape", "scale", "orientation", "position_x", "position_y"]
    assert all(list(r["mig_per_factor"]) == factors for r in rows)
    assert rows[0]["mig"] == pytest.approx(
        np.mean(list(rows[0]["mig_per_factor"].values())), abs=0.1
    )
    table = (tmp_path / "results.md").read_text().splitlines()
    assert "mig_chen" in rows[0] and "mig_chen" not in rows[1]  # InfoGAN has no q(z|x)
    assert list(rows[0]["mig_chen_per_factor"]) == factors and not rows[1]["mig_chen_per_factor"]
    assert table[0].startswith("| model | seeds | images | batch | images/s | mig | mig_chen |")
    assert table[2].startswith("| vae | 1 | 32 | 8 |") and table[3].endswith("| - | - |")
    assert table[7] == "| model | shape | scale | orientation | position_x | position_y |"
    assert table[12] == "`mig_chen` by factor (each factor's term):"
    assert table[17].startswith("| infogan | - |")
    again = _quality(tmp_path, metrics="mig,mig_chen")
    assert again.returncode == 0 and json.loads(again.stdout)["rows"] == rows
    refused = _quality(tmp_path, "--set", "train.lr=1e-3", metrics="mig,mig_chen")
    assert refused.returncode != 0 and "another budget or setting" in refused.stderr


def test_quality_trains_runs_in_parallel_and_scopes_overrides_to_a_model(tmp_path):
    done = _quality(tmp_path, "--jobs", "2", "--set", "vae:model.latent_dim=3")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["model"], r["seed"]) for r in rows] == [("vae", 0), ("infogan", 0)]
    latent_dims = {
        name: runs.read_config(tmp_path / "runs" / f"{name}-s0").model.options.get("latent_dim")
        for name in ("vae", "infogan")
    }
    assert latent_dims["vae"] == 3 and latent_dims["infogan"] != 3
    unknown = _quality(tmp_path, "--set", "annealvae:model.capacity_steps=9")
    assert unknown.returncode != 0 and unknown.stderr.strip().endswith(
        "--set annealvae:model.capacity_steps=9: 'annealvae' is not among --models (vae,infogan)"
    )
    malformed = _quality(tmp_path / "malformed", "--set", "vae:model.latent_dim")
    assert malformed.returncode != 0 and malformed.stderr.strip().startswith(
        "--set for vae: override 'model.latent_dim' must look like section.key=value"
    )
    assert not (tmp_path / "malformed" / "runs").exists()
    assert all(r["threads"] == max((os.cpu_count() or 1) // 2, 1) for r in rows)
    assert (
        _quality(tmp_path, "--jobs", "0")
        .stderr.strip()
        .endswith("--jobs must be at least 1, got 0")
    )


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def _parallel_quality_under_way(out: Path, **popen) -> tuple[subprocess.Popen, list[Path]]:
    """Two seeds training side by side, each past its first log line, a third waiting its turn;
    and the first two's logs."""
    args = ["--models", "vae", "--seeds", "0,1,2", "--images", "16000", "--batch-size", "8"]
    args += ["--samples", "100", "--metrics", "mig", "--jobs", "2", "--out", str(out)]
    benchmark = subprocess.Popen([sys.executable, str(SCRIPT), *args], **popen)
    logs = [out / "runs" / f"vae-s{seed}" / "log.jsonl" for seed in (0, 1)]
    deadline = time.monotonic() + 300
    while not all(log.exists() and log.stat().st_size for log in logs):
        assert time.monotonic() < deadline and benchmark.poll() is None
        time.sleep(0.5)
    return benchmark, logs


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_killing_parallel_quality_stops_its_workers_and_keeps_their_steps(tmp_path):
    parent, logs = _parallel_quality_under_way(tmp_path)
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    parent.terminate()
    parent.wait()
    deadline = time.monotonic() + 60
    while any(_alive(int(pid)) for pid in children):
        assert time.monotonic() < deadline, "a worker outlived the benchmark"
        time.sleep(0.5)
    for log in logs:
        assert runs.trained_steps(log.parent) >= 100  # saved at its step, past the first log


@pytest.mark.slow  # two more real process trees; the sweep's Ctrl-C tests cover the pool in CI
@pytest.mark.parametrize("send", [os.killpg, os.kill], ids=["terminal", "parent-alone"])
def test_ctrl_c_on_parallel_quality_says_how_to_resume_keeps_the_steps_starts_no_more(
    tmp_path, send
):
    benchmark, logs = _parallel_quality_under_way(
        tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        send(benchmark.pid, signal.SIGINT)  # killpg: as a terminal's Ctrl-C; kill: to it alone
        _, stderr = benchmark.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # after a timeout, leave no training behind
            os.killpg(benchmark.pid, signal.SIGKILL)
    assert benchmark.returncode != 0 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: 0 finished rows are in ")
    for log in logs:
        assert runs.trained_steps(log.parent) >= 100
    assert not (tmp_path / "runs" / "vae-s2").exists()  # the queued run never started


def _load(script):
    import importlib.util

    spec = importlib.util.spec_from_file_location(script, SCRIPT.parent / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rotation_of_a_uniform_square_moves_kl_between_tc_and_dimension_wise_kl():
    module = _load("rotation_preference")
    tc_axes, dwkl_axes = module.exact_terms(0.0, 0.01)
    tc_diagonal, dwkl_diagonal = module.exact_terms(np.pi / 4, 0.01)
    # by hand, unit variance: a flat marginal on [-√3, √3] has entropy log(2√3), the 45°
    # triangle on [-√6, √6] has 1/2 + log(√6); the joint's entropy is log(12) either way
    flat, triangle = np.log(2 * np.sqrt(3)), 0.5 + np.log(np.sqrt(6))
    gaussian = 0.5 * np.log(2 * np.pi * np.e)
    assert tc_axes == pytest.approx(0.0, abs=0.01)
    assert tc_diagonal == pytest.approx(2 * (triangle - flat), abs=0.015)
    assert dwkl_axes == pytest.approx(2 * (gaussian - flat), abs=0.015)
    assert tc_axes + dwkl_axes == pytest.approx(tc_diagonal + dwkl_diagonal, abs=0.01)


def test_the_batch_estimate_of_tc_sees_the_rotation():
    module = _load("rotation_preference")
    generator = torch.Generator().manual_seed(0)
    tc_axes, _ = module.estimated_terms(0.0, 0.1, 256, "mws", 20, generator)
    tc_diagonal, _ = module.estimated_terms(np.pi / 4, 0.1, 256, "mws", 20, generator)
    assert tc_diagonal > tc_axes + 0.1  # exact: +0.30; the estimate sees ~0.2


@pytest.mark.parametrize("degrees", [0, 30, 45, 80])
@pytest.mark.parametrize("signs", [(-1, -1), (1, -1)])
def test_position_angle_reads_the_turn_of_the_plane(degrees, signs):
    module = _load("position_angle")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 32, 4000), rng.integers(0, 32, 4000)
    theta = np.radians(degrees)
    plane = (
        np.stack([x - 15.5, y - 15.5], 1)
        / 9.2
        @ np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    )
    codes = np.zeros((4000, 6))
    codes[:, [4, 1]] = plane * signs  # flipped signs and any pair of latents read the same
    codes[:, [0, 2, 3, 5]] = 0.3 * rng.standard_normal((4000, 4))
    found = module.plane_angle(codes, x, y)
    assert sorted(found["latents"]) == [1, 4]
    assert found["angle"] == pytest.approx(min(degrees % 90, 90 - degrees % 90), abs=1.0)
