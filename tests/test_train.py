"""The trainer: run directory contents, exact resume after a kill, finished runs left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import untwine
from tests.conftest import run_cli, tiny_config
from untwine import runs
from untwine.data import load_dataset
from untwine.errors import UntwineError
from untwine.models.betavae import BetaVAE
from untwine.train.trainer import TrainingDiverged, build, sample_batch

TINY_CLI = [
    "--steps",
    "200",
    "--batch-size",
    "8",
    "--latent-dim",
    "3",
    "--device",
    "cpu",
    "--no-progress",
    "train.checkpoint_every=10",
    "train.log_every=10",
    "model.hidden=[64]",
]


def test_a_run_directory_holds_config_weights_state_and_log(tmp_path):
    run_dir = untwine.train(tiny_config(), tmp_path / "run", progress=False)
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.yaml",
        "model.safetensors",
        "state.pt",
        "log.jsonl",
    }
    config = runs.read_config(run_dir).to_dict()
    assert list(config["model"]["observation_shape"]) == [1, 64, 64]
    log = runs.read_log(run_dir)
    assert [r["step"] for r in log] == [5, 10, 15, 20]
    assert {"loss", "recon", "kl", "kl_per_dim", "active_units", "images_per_s"} <= set(log[0])
    assert 0 <= log[-1]["active_units"] <= 4
    assert len(log[0]["kl_per_dim"]) == 4
    state = torch.load(run_dir / "state.pt", weights_only=True)
    assert state["step"] == 20


def test_load_run_gives_a_model_whose_representation_is_the_posterior_mean(tmp_path):
    run_dir = untwine.train(tiny_config(), tmp_path / "run", progress=False)
    model = untwine.load_run(run_dir)
    x = torch.rand(5, 1, 64, 64)
    torch.testing.assert_close(model.representation(x), model.encode(x)[0])
    assert model.representation(x).shape == (5, 4)


def test_same_seed_same_weights(tmp_path):
    a = untwine.train(tiny_config(), tmp_path / "a", progress=False)
    b = untwine.train(tiny_config(), tmp_path / "b", progress=False)
    _assert_same_weights(a, b)


def test_a_finished_run_is_not_retrained_and_force_starts_over(tmp_path):
    run_dir = untwine.train(tiny_config(), tmp_path / "run", progress=False)
    stamp = (run_dir / "model.safetensors").stat().st_mtime_ns
    untwine.train(tiny_config(), run_dir, progress=False)
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == stamp
    untwine.train(tiny_config(), run_dir, force=True, progress=False)
    assert (run_dir / "model.safetensors").stat().st_mtime_ns != stamp
    assert [r["step"] for r in runs.read_log(run_dir)] == [5, 10, 15, 20]


@pytest.mark.parametrize(
    "model",
    [
        {},
        {
            "model.name": "factorvae",
            "model.discriminator_hidden": 16,
            "model.discriminator_layers": 2,
        },
    ],
)
def test_more_steps_continue_a_finished_run_exactly(tmp_path, model):
    """Every optimiser (FactorVAE's critic's too) and RNG stream resumes where it stopped."""
    untwine.train(tiny_config(**{**model, "train.steps": 10}), tmp_path / "a", progress=False)
    untwine.train(tiny_config(**model), tmp_path / "a", progress=False)
    untwine.train(tiny_config(**model), tmp_path / "b", progress=False)
    _assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_resuming_with_a_different_config_is_refused(tmp_path):
    untwine.train(tiny_config(), tmp_path / "run", progress=False)
    with pytest.raises(UntwineError, match=r"model.beta=16.0, not 2.0; use --force"):
        untwine.train(tiny_config(**{"model.beta": 2}), tmp_path / "run", progress=False)


@pytest.mark.parametrize("at", ["between the two writes", "during the weights' write"])
def test_a_kill_inside_the_last_checkpoint_is_repaired_by_the_rerun(tmp_path, monkeypatch, at):
    """A checkpoint writes state.pt, then model.safetensors: a kill after the first write (or
    during the second, which is atomic) leaves the weights a checkpoint behind; the rerun sees
    a finished run and must still bring the weights to the state's step."""
    untwine.train(tiny_config(**{"train.steps": 10}), tmp_path / "a", progress=False)

    def killed(run_dir, model, step):
        if at == "during the weights' write":
            (run_dir / ".model.safetensors.tmp1").write_bytes(b"half a file")
        raise KeyboardInterrupt  # the process ends here

    monkeypatch.setattr(runs, "save_weights", killed)
    with pytest.raises(KeyboardInterrupt):
        untwine.train(tiny_config(), tmp_path / "a", progress=False)
    monkeypatch.undo()
    assert runs.trained_steps(tmp_path / "a") == 10  # the weights lag the state (step 20)
    untwine.train(tiny_config(), tmp_path / "a", progress=False)
    untwine.train(tiny_config(), tmp_path / "b", progress=False)
    assert runs.trained_steps(tmp_path / "a") == 20
    assert not list((tmp_path / "a").glob(".*.tmp*"))  # the cut write's leftovers are swept
    _assert_same_weights(tmp_path / "a", tmp_path / "b")


def test_force_deletes_only_what_untwine_wrote_and_nothing_in_a_foreign_folder(tmp_path):
    foreign = tmp_path / "foreign"
    (foreign / "figures").mkdir(parents=True)
    files = {"config.yaml": "my: settings\n", "metrics.json": "{}", "figures/plot.png": "png"}
    for name, text in files.items():
        (foreign / name).write_text(text)
    with pytest.raises(UntwineError, match="exists and is not an untwine run"):
        untwine.train(tiny_config(), foreign, progress=False, force=True)
    assert {name: (foreign / name).read_text() for name in files} == files
    run = untwine.train(tiny_config(), tmp_path / "run", progress=False)
    (run / "notes.txt").write_text("mine")
    untwine.train(tiny_config(), run, progress=False, force=True)
    assert (run / "notes.txt").read_text() == "mine" and runs.trained_steps(run) == 20


def test_an_output_path_that_is_a_file_or_a_foreign_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UntwineError, match="is a file"):
        untwine.train(tiny_config(), tmp_path / "file", progress=False)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    with pytest.raises(UntwineError, match="not an untwine run"):
        untwine.train(tiny_config(), tmp_path / "folder", progress=False)


def _start(run_dir):
    return subprocess.Popen(
        [sys.executable, "-m", "untwine", "train", "--out", str(run_dir), *TINY_CLI],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(process, run_dir):
    deadline = time.monotonic() + 120
    while not (run_dir / "state.pt").exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_then_resumed_equals_uninterrupted(tmp_path, sig):
    """The README's promise: run the same command again after a kill, get the same weights."""
    interrupted = tmp_path / "interrupted"
    process = _start(interrupted)
    _wait_for_checkpoint(process, interrupted)
    os.kill(process.pid, sig)
    _, stderr = process.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert process.returncode == 130 and "run the same command again to resume" in stderr
    step = torch.load(interrupted / "state.pt", weights_only=True)["step"]
    assert 10 <= step < 200, "the kill came too late to test a resume"

    for run_dir in (interrupted, tmp_path / "straight"):  # the same command, run again
        run_cli("train", "--out", str(run_dir), *TINY_CLI)
    _assert_same_weights(interrupted, tmp_path / "straight")
    steps = [r["step"] for r in runs.read_log(interrupted)]
    assert steps == sorted(set(steps)) and steps[-1] == 200


def _assert_same_weights(a, b):
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_a_nan_stops_training_at_its_step_naming_the_term_and_keeps_the_checkpoint(
    tmp_path, monkeypatch
):
    original = BetaVAE.regularizer

    def poisoned(self, posterior, step):
        penalty, terms = original(self, posterior, step)
        return (penalty * float("nan"), terms) if step == 6 else (penalty, terms)

    monkeypatch.setattr(BetaVAE, "regularizer", poisoned)
    config = tiny_config(**{"train.checkpoint_every": 4})
    with pytest.raises(TrainingDiverged, match=r"stopped at step 7: loss not finite.*step 4"):
        untwine.train(config, tmp_path / "run", progress=False)
    assert torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"] == 4
    assert runs.trained_steps(tmp_path / "run") == 4


def test_grad_clip_clips_every_objective(tmp_path, monkeypatch):
    norms = []
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, n: norms.append(n))
    untwine.train(
        tiny_config(**{"train.grad_clip": 0.5, "train.steps": 3}), tmp_path / "run", progress=False
    )
    assert norms == [0.5, 0.5, 0.5]


@pytest.fixture
def process_threads():
    """Set this process's CPU thread count for a test; the count it had comes back after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_a_resume_trains_on_the_thread_count_the_run_started_with(tmp_path, process_threads):
    """A convnet's CPU sums depend on the thread count, so an exact resume needs the count the
    run started with: it is recorded in config.yaml (0 means this process's) and reused."""
    conv = {"model.arch": "conv64"}
    process_threads(1)
    untwine.train(tiny_config(**conv), tmp_path / "whole", progress=False)
    untwine.train(tiny_config(**conv, **{"train.steps": 10}), tmp_path / "cut", progress=False)
    process_threads(2)
    untwine.train(tiny_config(**conv), tmp_path / "cut", progress=False)  # resumed on 2 cores
    untwine.train(tiny_config(**conv), tmp_path / "two", progress=False)

    assert runs.read_config(tmp_path / "cut").train.threads == 1
    assert torch.get_num_threads() == 2  # the process's own count, given back
    _assert_same_weights(tmp_path / "cut", tmp_path / "whole")
    two = load_file(tmp_path / "two" / "model.safetensors")
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    count_matters = any(not torch.equal(two[key], whole[key]) for key in whole)

    with pytest.warns(UserWarning, match=r"trained with train.threads=1; resuming with 2, its"):
        untwine.train(
            tiny_config(**conv, **{"train.threads": 2, "train.steps": 30}),
            tmp_path / "cut",
            progress=False,
        )
    assert runs.read_config(tmp_path / "cut").train.threads == 2
    if not count_matters:  # as on an AMD EPYC with torch 2.13, measured 2026-12-03
        pytest.skip(
            "on this CPU a tiny run's weights do not depend on the thread count, so the "
            "exact resume above could not tell the counts apart"
        )


class _Killed(BaseException):
    """The process ends here: nothing after it runs, no cleanup (unlike KeyboardInterrupt)."""


def _kill_at(point: int, mode: str, monkeypatch) -> None:
    """End the run at its `point`-th file write: `mid` leaves that write half done (a partial
    temporary file, half a log line), `after` lets it finish and ends the run straight after."""
    writes = {"count": 0}
    atomic, append = runs.atomic_write, runs.append_log

    def cut(path, data=None, *, record=None):
        writes["count"] += 1
        if writes["count"] != point:
            return atomic(path, data) if record is None else append(path, record)
        if mode == "after":
            atomic(path, data) if record is None else append(path, record)
        elif record is None:
            path.with_name(f".{path.name}.tmp999").write_bytes(data[: len(data) // 2])
        else:
            with open(path / runs.LOG, "a") as file:
                file.write(json.dumps(record)[:20])
        raise _Killed

    monkeypatch.setattr(runs, "atomic_write", cut)
    monkeypatch.setattr(runs, "append_log", lambda run_dir, record: cut(run_dir, record=record))


WRITES = 10  # a 20-step run: config.yaml, the log (emptied), 4 log lines, state and weights twice


@pytest.mark.parametrize("mode", ["mid", "after"])
@pytest.mark.parametrize("point", range(1, WRITES + 1))
def test_a_kill_at_any_write_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch, point, mode):
    untwine.train(tiny_config(), tmp_path / "whole", progress=False)
    _kill_at(point, mode, monkeypatch)
    with pytest.raises(_Killed):
        untwine.train(tiny_config(), tmp_path / "cut", progress=False)
    monkeypatch.undo()

    untwine.train(tiny_config(), tmp_path / "cut", progress=False)
    _assert_same_weights(tmp_path / "cut", tmp_path / "whole")
    losses = [[(r["step"], r["loss"]) for r in runs.read_log(d)] for d in ("cut", "whole")]
    assert losses[0] == losses[1]  # no step logged twice or lost
    assert not list((tmp_path / "cut").glob(".*"))  # nothing half-written left behind


def test_a_twenty_step_run_writes_as_many_times_as_the_kill_test_counts(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runs, "atomic_write", lambda path, data: calls.append(path.name))
    monkeypatch.setattr(runs, "append_log", lambda run_dir, record: calls.append("log"))
    untwine.train(tiny_config(), tmp_path / "run", progress=False)
    assert len(calls) == WRITES, calls


@pytest.mark.parametrize("name", ["betavae", "adagvae", "qlae", "tripod"])
def test_bf16_runs_the_networks_in_bfloat16_and_keeps_weights_losses_and_scores_float32(name):
    config = tiny_config(**{"model.name": name, "train.precision": "bf16"})
    dataset = load_dataset("dsprites")
    torch.manual_seed(0)
    _, model = build(config, dataset)
    seen = []
    for network in (model.encoder, model.decoder):
        first = next(m for m in network.modules() if isinstance(m, torch.nn.Linear))
        first.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x = sample_batch(dataset, 8, torch.Generator().manual_seed(0), "cpu", 1)
    model.train()
    terms = model.loss(x, 0)
    terms["loss"].backward()
    # Tripod's Hessian penalty takes second differences of the decoder: those stay float32
    assert set(seen) == ({torch.bfloat16, torch.float32} if name == "tripod" else {torch.bfloat16})
    assert all(term.dtype == torch.float32 for term in terms.values())
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)

    model.train_dtype = torch.float32
    exact = model.loss(x, 0)["recon"]
    assert abs(terms["recon"].item() - exact.item()) < 0.01 * exact.item()  # bf16's ~3 digits
    seen.clear()
    model.eval()
    model.train_dtype = torch.bfloat16
    model.representation(x)
    assert set(seen) == {torch.float32}  # scores read the code in float32


def test_precision_is_a_train_flag_recorded_in_the_run_and_refused_where_unsupported(tmp_path):
    run_cli("train", *TINY_CLI, "--steps", "3", "--precision", "bf16", "--out", str(tmp_path / "r"))
    assert runs.read_config(tmp_path / "r").train.precision == "bf16"
    run_cli("train", *TINY_CLI, "--steps", "6", "--out", str(tmp_path / "r"))  # resumes in fp32
    assert runs.trained_steps(tmp_path / "r") == 6

    refused = run_cli("train", "--model", "infogan", "--precision", "bf16", check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "train.precision bf16 is for autoencoders" in refused.stderr
    wrong = run_cli("train", *TINY_CLI, "train.precision=fp16", check=False)
    assert wrong.returncode == 2 and "fp16" in wrong.stderr
