"""Sweeps: a study file expands to the runs it names, each trains and is scored once, a rerun
resumes, and a mistake in the file is one line before anything trains."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import run_cli
from untwine import runs
from untwine.cli import cli
from untwine.errors import UntwineError
from untwine.evaluate import agreement
from untwine.sweep import load_study, run_study
from untwine.sweep.cluster import gpu_requests
from untwine.sweep.plan import plan_study
from untwine.sweep.pool import busy_cores
from untwine.sweep.runner import study_lock
from untwine.sweep.store import ResultStore

TINY = """
base:
  model: {latent_dim: 3, hidden: [64]}
  train: {steps: 2, batch_size: 4, log_every: 1, device: cpu}
evaluate: {metrics: mig, samples: 100}
"""


def _study(tmp_path, text: str, name: str = "study.yaml"):
    path = tmp_path / name
    path.write_text(TINY + text)
    return path


def test_a_study_expands_to_arms_times_swept_values_times_seeds(tmp_path):
    path = _study(
        tmp_path,
        "grid:\n"
        "  - {model.name: betavae, model.beta: [1, 16]}\n"
        "  - {model.name: betatcvae, model.hidden: [[32, 16]]}\n"
        "seeds: [0, 1]\n",
    )
    study = load_study(path)
    assert study.name == "study" and study.metrics == "mig" and study.samples == 100
    assert [run.name for run in study.runs] == [
        "betavae-beta1-s0",
        "betavae-beta1-s1",
        "betavae-beta16-s0",
        "betavae-beta16-s1",
        "betatcvae-hidden32x16-s0",
        "betatcvae-hidden32x16-s1",
    ]
    first, last = study.runs[0], study.runs[-1]
    assert first.swept == {"model.name": "betavae", "model.beta": 1, "train.seed": 0}
    assert first.config.model.options["beta"] == 1.0 and first.config.train.steps == 2
    assert last.config.model.options["hidden"] == (32, 16) and last.config.train.seed == 1
    assert last.config.model.options["latent_dim"] == 3  # from base
    assert "model.beta" not in last.swept  # that arm does not set it
    assert len({run.config_hash for run in study.runs}) == 6
    path.write_text(TINY + "grid:\n  - {data.name: [dsprites, shapes3d], model.beta: [1, 4]}\n")
    assert [run.name for run in load_study(path).runs] == [
        "betavae-dsprites-beta1-s0",
        "betavae-dsprites-beta4-s0",
        "betavae-shapes3d-beta1-s0",
        "betavae-shapes3d-beta4-s0",
    ]


def test_a_study_without_a_grid_is_one_run_per_seed_with_evaluate_defaults(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\nseeds: 3\n")
    study = load_study(path)
    assert [run.name for run in study.runs] == ["betavae-s3"]
    assert (study.metrics, study.samples) == ("all", 10_000)
    path.write_text("evaluate: false\n")
    assert load_study(path).metrics is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grids: []\n", "unknown key 'grids'; accepted: name, base, grid, seeds, images, evaluate"),
        ("grid: {beta: [1, 2]}\n", "grid key 'beta' must look like section.option"),
        ("grid: {train.seed: [1, 2]}\n", "give seeds with the study's seeds key"),
        ("grid: []\n", "grid must be a mapping or a non-empty list of mappings"),
        ("grid: {model.beta: []}\n", "model.beta sweeps no values"),
        ("seeds: [0, one]\n", "seeds must be an integer or a list of integers"),
        ("evaluate: {metrics: mig, samples: 5}\n", "evaluate.samples must be an integer ≥ 10"),
        ("evaluate: {metric: mig}\n", "evaluate must be false or a mapping"),
        ("grid: {model.beta: [4, 4.0]}\n", "train the same config"),
        ("base: {trian: {}}\n", "base must be a run config with sections data, model, train"),
        ("base: {model: betavae}\n", "base must be a run config with sections data, model, train"),
        (
            "grid: {model.name: infogan}\nevaluate: {metrics: mig_chen}\n",
            "metric 'mig_chen' reads the posterior q(z|x), and no model of this study has one",
        ),
        ("name: ../escaped\n", "name '../escaped' must be a plain folder name"),
        ("name: /tmp/abs\n", "name '/tmp/abs' must be a plain folder name"),
        (
            "grid: {model.beta: [4, -1]}\n",
            "run model.beta=-1 train.seed=0: model.beta must be",
        ),
    ],
)
def test_a_mistake_in_a_study_is_one_line_before_anything_trains(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UntwineError) as error:
        load_study(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_sweep_trains_scores_and_tables_each_run_and_a_rerun_redoes_nothing(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\nseeds: [0, 1]\n")
    out = tmp_path / "out"
    ended = []
    rows = run_study(load_study(path), out, on_result=lambda row, left: ended.append(row))
    assert [row["name"] for row in rows] == [
        "betavae-beta1-s0",
        "betavae-beta1-s1",
        "betavae-beta4-s0",
        "betavae-beta4-s1",
    ]
    assert len(ended) == 4 and all(row["status"] == "done" for row in rows)
    assert all(0 <= row["metrics"]["mig"] <= 1 for row in rows)
    assert all(runs.trained_steps(out / "runs" / row["name"]) == 2 for row in rows)
    table = (out / "results.md").read_text().splitlines()
    assert table[0] == "# study"
    assert table[2].startswith("| model.beta | done | mig | active_units |")
    migs = [row["metrics"]["mig"] for row in rows[:2]]
    assert table[4].startswith(f"| 1 | 2/2 | {sum(migs) / 2:.3f} ± ")
    by_factor = table.index("`mig` by factor (each factor's term):")
    assert table[by_factor + 2].startswith("| model.beta | shape | scale | orientation |")
    shapes = [row["metrics"]["mig.shape"] for row in rows[2:]]
    assert table[by_factor + 5].startswith(f"| 4 | {sum(shapes) / 2:.3f} ± ")
    with open(out / "results.csv") as file:
        lines = list(csv.DictReader(file))
    assert [line["model.beta"] for line in lines] == ["1", "1", "4", "4"]
    assert float(lines[3]["mig.position_x"]) == rows[3]["metrics"]["mig.position_x"]
    with sqlite3.connect(out / "study.db") as db:
        assert db.execute("SELECT count(*) FROM runs WHERE status='done'").fetchone() == (4,)

    again = []
    assert run_study(load_study(path), out, on_result=lambda row, left: again.append(row)) == rows
    assert again == []  # nothing retrained, nothing rescored


def test_seeds_of_one_setting_are_scored_against_each_other_by_udr(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\nseeds: [0, 1, 2]\n")
    out = tmp_path / "out"
    rows = run_study(load_study(path), out)
    udr = {row["name"]: row["metrics"]["udr"] for row in rows}
    assert len(udr) == 6 and all(0 <= value <= 1 for value in udr.values())
    names = [f"betavae-beta1-s{seed}" for seed in range(3)]
    expected = agreement([out / "runs" / name for name in names], samples=100)
    assert [udr[name] for name in names] == pytest.approx(expected, abs=1e-6)
    assert "| udr |" in (out / "results.md").read_text().splitlines()[2]
    store = ResultStore(out / "study.db")  # as an untwine without UDR scored them
    for row in rows:
        store.finish(row["name"], {"mig": row["metrics"]["mig"]}, row["train_s"])
    store.close()
    again = run_study(load_study(path), out)
    assert [row["metrics"]["udr"] for row in again] == pytest.approx(list(udr.values()))


def test_a_setting_with_one_seed_has_no_udr(tmp_path):
    rows = run_study(load_study(_study(tmp_path, "grid: {model.beta: [1, 4]}\n")), tmp_path / "o")
    assert all("udr" not in row["metrics"] for row in rows)


def test_a_sweep_cut_short_resumes_with_the_runs_it_had_not_finished(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")

    def crash_after_the_first(row, left):
        raise KeyboardInterrupt  # as a kill between two runs

    with pytest.raises(KeyboardInterrupt):
        run_study(load_study(path), tmp_path / "out", on_result=crash_after_the_first)
    ended = []
    rows = run_study(
        load_study(path), tmp_path / "out", on_result=lambda row, left: ended.append(row)
    )
    assert [row["name"] for row in ended] == ["betavae-beta4-s0"]
    assert [row["status"] for row in rows] == ["done", "done"]


def test_a_study_may_lengthen_its_runs_but_not_change_them(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    out = tmp_path / "out"
    run_study(load_study(path), out)
    path.write_text(TINY.replace("steps: 2", "steps: 3") + "grid: {model.beta: [1, 4]}\n")
    ended = []
    run_study(load_study(path), out, on_result=lambda row, left: ended.append(row))
    assert len(ended) == 2 and runs.trained_steps(out / "runs" / "betavae-beta1-s0") == 3
    path.write_text(TINY.replace("steps: 2", "steps: 3").replace("4, log", "8, log"))
    path.write_text(path.read_text() + "grid: {model.beta: [1, 4]}\n")
    with pytest.raises(UntwineError, match=r"run betavae-beta1-s0 trained with train.batch_size=4"):
        run_study(load_study(path), out)


def test_a_run_stored_by_an_older_untwine_resumes_with_the_options_added_since(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    out = tmp_path / "out"
    run_study(load_study(path), out)
    with sqlite3.connect(out / "study.db") as db:  # as stored before model.activation existed
        for name, text in db.execute("SELECT name, config FROM runs").fetchall():
            config = json.loads(text)
            del config["model"]["activation"]
            db.execute("UPDATE runs SET config=? WHERE name=?", (json.dumps(config), name))
    ended = []
    run_study(load_study(path), out, on_result=lambda row, left: ended.append(row))
    assert ended == []  # the default trains what it trained: nothing to redo


def test_a_failed_run_is_recorded_the_others_finish_and_the_cli_exits_1(tmp_path):
    path = _study(
        tmp_path,
        "grid:\n  - {model.beta: 1}\n  - {model.beta: 4, train.lr: 1.0e+30}\n",
    )
    out = tmp_path / "out"
    result = run_cli("sweep", str(path), "--out", str(out), check=False)
    assert result.returncode == 1, result.stderr
    assert "[1/2] betavae-beta1-s0: done in " in result.stdout
    failure = "[2/2] betavae-beta4-lr1e+30-s0: failed: TrainingDiverged: training stopped at step 2"
    assert failure in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 runs failed")
    assert "Failed runs:" in (out / "results.md").read_text()
    again = run_cli("sweep", str(path), "--out", str(out), check=False)
    assert "[1/1] betavae-beta4-lr1e+30-s0: failed" in again.stderr  # tried again


def test_the_cli_sweeps_on_two_workers_and_a_bad_study_exits_2(tmp_path):
    path = _study(tmp_path, "grid: {model.name: [vae, betavae]}\n")
    result = run_cli("sweep", str(path), "--workers", "2", cwd=tmp_path)
    ended = [line.split("] ")[1].split(":")[0] for line in result.stdout.splitlines()[:2]]
    assert sorted(ended) == ["betavae-s0", "vae-s0"]  # in the order they finished
    assert result.stderr.startswith("study: training 2 of 2 runs, 2 at a time; each prints")
    assert "results:   studies/study/results.md" in result.stdout
    assert (tmp_path / "studies" / "study" / "runs" / "vae-s0" / "model.safetensors").exists()
    (tmp_path / "bad.yaml").write_text("grid: {model.name: [vae, nosuch]}\n")
    bad = run_cli("sweep", str(tmp_path / "bad.yaml"), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown model 'nosuch'" in bad.stderr


def _stored(out) -> dict:
    with sqlite3.connect(out / "study.db") as db:
        rows = db.execute("SELECT name, status, metrics, train_s FROM runs").fetchall()
    return {name: (status, json.loads(scores or "{}"), took) for name, status, scores, took in rows}


def test_a_metric_added_to_a_finished_study_is_scored_without_retraining(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    out = tmp_path / "out"
    run_cli("sweep", str(path), "--out", str(out))
    before = _stored(out)
    weights = (out / "runs" / "betavae-beta1-s0" / "model.safetensors").read_bytes()
    path.write_text(path.read_text().replace("metrics: mig,", 'metrics: "mig,sap",'))
    plan = run_cli("sweep", str(path), "--out", str(out), "--plan").stdout
    assert "(+1 finished, to score only)" in plan and "0 runs left and 2 to score again" in plan
    again = run_cli("sweep", str(path), "--out", str(out))
    assert again.stderr.startswith(
        "study: training 0 of 2 runs and scoring 2 finished for the metrics they lack, 1 at a time"
    )
    after = _stored(out)
    for name, (status, metrics, train_s) in after.items():
        assert status == "done" and "sap" in metrics
        assert metrics["mig"] == before[name][1]["mig"]  # the same draws score the same codes
        assert train_s == before[name][2]  # its training time, not the rescoring's
    assert (out / "runs" / "betavae-beta1-s0" / "model.safetensors").read_bytes() == weights
    assert "sap" in (out / "results.csv").read_text().splitlines()[0]
    third = run_cli("sweep", str(path), "--out", str(out))
    assert third.stdout.startswith("results:")  # nothing lacks a score now


def test_a_finished_run_whose_rescoring_fails_stays_done(tmp_path, monkeypatch):
    path = _study(tmp_path, "")
    out = tmp_path / "out"
    run_study(load_study(path), out)
    path.write_text(path.read_text().replace("metrics: mig,", 'metrics: "mig,sap",'))

    def fails(config, run_dir, metrics, samples, progress):
        return {"name": "betavae-s0", "status": "failed", "error": "the disk is gone"}

    monkeypatch.setattr("untwine.sweep.runner.train_and_score", fails)
    seen = []
    run_study(load_study(path), out, on_result=lambda row, left: seen.append(row["status"]))
    assert seen == ["failed"]
    status, metrics, _ = _stored(out)["betavae-s0"]
    assert status == "done" and "mig" in metrics and "sap" not in metrics


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_killed_sweep_keeps_its_finished_runs_and_resumes_the_one_cut_short(tmp_path, sig):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    slower = path.read_text().replace("steps: 2,", "steps: 200, checkpoint_every: 10,")
    path.write_text(slower)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "untwine", "sweep", str(path), "--out", str(out)]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = out / "runs" / "betavae-beta4-s0"
    deadline = time.monotonic() + 240
    while not (second / "model.safetensors").exists():  # the first run done, the second going
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.stderr.read()
        time.sleep(0.02)
    os.kill(sweep.pid, sig)
    _, stderr = sweep.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert sweep.returncode == 130 and "Traceback" not in stderr
        assert (
            stderr.strip()
            .splitlines()[-1]
            .endswith("run the same command again to resume the rest")
        )
    cut_at = runs.trained_steps(second)
    assert 10 <= cut_at < 200, "the kill came too late to test a resume"

    again = run_cli("sweep", str(path), "--out", str(out))
    assert again.stdout.splitlines()[0].startswith("[1/1] betavae-beta4-s0: done")  # first kept
    steps = [record["step"] for record in runs.read_log(second)]
    assert steps == list(range(1, 201))  # resumed at its checkpoint: no step twice, none lost


RAY_LOCAL = ["--backend", "ray", "--address", "local"]  # a Ray cluster of this machine alone


@pytest.mark.slow  # starts a Ray cluster (~30 s each); needs untwine[ray]
def test_a_sweep_runs_as_tasks_on_a_ray_cluster_on_this_machine(tmp_path):
    pytest.importorskip("ray")
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    out = tmp_path / "out"
    result = run_cli("sweep", str(path), "--out", str(out), *RAY_LOCAL, cwd=tmp_path)
    ended = sorted(line.split("] ")[1].split(":")[0] for line in result.stdout.splitlines()[:2])
    assert ended == ["betavae-beta1-s0", "betavae-beta4-s0"]
    assert result.stderr.startswith("study: training 2 of 2 runs, as Ray tasks; each prints")
    assert all(runs.trained_steps(out / "runs" / name) == 2 for name in ended)
    with sqlite3.connect(out / "study.db") as db:
        assert db.execute("SELECT count(*) FROM runs WHERE status='done'").fetchone() == (2,)
    again = run_cli("sweep", str(path), "--out", str(out), *RAY_LOCAL)
    assert again.stdout.startswith("results:")  # nothing left to run: Ray not even needed


@pytest.mark.slow  # starts a Ray cluster (~30 s each); needs untwine[ray]
def test_ctrl_c_stops_a_ray_sweep_at_a_saved_step_and_the_rerun_continues_it(tmp_path):
    pytest.importorskip("ray")
    path = _study(tmp_path, "")
    longer = path.read_text().replace("steps: 2,", "steps: 3000, checkpoint_every: 100000,")
    path.write_text(longer)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "untwine", "sweep", str(path), "--out", str(out), *RAY_LOCAL]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "runs" / "betavae-s0" / "log.jsonl"
    deadline = time.monotonic() + 240
    while not (log.exists() and log.read_text().count("\n") >= 50):  # the task is training
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.stderr.read()
        time.sleep(0.05)
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130 and "Traceback" not in stderr, stderr
    cut_at = runs.trained_steps(log.parent)  # saved where Ray's cancel stopped the task
    assert 50 <= cut_at < 3000, "the interrupt came too late to test a resume"

    run_cli("sweep", str(path), "--out", str(out), *RAY_LOCAL)
    assert [record["step"] for record in runs.read_log(log.parent)] == list(range(1, 3001))


def test_ray_tasks_ask_for_a_gpu_on_cuda_and_on_auto_where_the_cluster_has_one():
    assert gpu_requests(["cuda", "auto", "cpu"], cluster_gpus=2) == [1, 1, 0]
    assert gpu_requests(["auto", "cpu"], cluster_gpus=0) == [0, 0]
    with pytest.raises(UntwineError, match=r"train.device=cuda but the Ray cluster has no GPU"):
        gpu_requests(["auto", "cuda"], cluster_gpus=0)


def test_the_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    path = _study(tmp_path, "")
    with pytest.raises(UntwineError, match=r"needs Ray, which is not installed: pip install"):
        run_study(load_study(path), tmp_path / "out", backend="ray")
    local = run_cli("sweep", str(path), "--address", "local", check=False)
    assert local.returncode == 2
    assert local.stderr == "error: --address names a Ray cluster; it needs --backend ray\n"


def test_an_image_budget_gives_each_model_the_steps_of_its_own_batch_size(tmp_path):
    grid = "grid: [{model.name: betavae, train.batch_size: 4}, {model.name: vae}]\nimages: 100\n"
    path = _study(tmp_path, grid.replace("train.batch_size: 4", "train.batch_size: 8"))
    path.write_text(path.read_text().replace("steps: 2, ", ""))
    study = load_study(path)
    assert [(r.name, r.config.train.steps) for r in study.runs] == [
        ("betavae-batch_size8-s0", 12),  # 100 images at 8 a batch
        ("vae-s0", 25),  # at the study's base batch size, 4
    ]
    both = _study(tmp_path, "images: 100\n", name="both.yaml")
    with pytest.raises(UntwineError, match=r"give the study's images or train\.steps, not both"):
        load_study(both)


def test_a_metric_of_the_posterior_scores_the_models_that_have_one(tmp_path):
    study = """
base: {model: {hidden: [64]}, train: {steps: 2, batch_size: 4}}
grid: [{model.name: vae}, {model.name: infogan}]
evaluate: {metrics: "mig,mig_chen", samples: 100}
"""
    (tmp_path / "mixed.yaml").write_text(study)
    assert [(r.name, r.metrics) for r in load_study(tmp_path / "mixed.yaml").runs] == [
        ("vae-s0", "mig,mig_chen"),
        ("infogan-s0", "mig"),  # InfoGAN has no q(z|x)
    ]


def test_a_second_driver_on_a_running_study_is_refused_in_one_line(tmp_path):
    """Two drivers would both train every unfinished run, into the same folders."""
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    path.write_text(path.read_text().replace("steps: 2,", "steps: 3000, checkpoint_every: 10,"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "untwine", "sweep", str(path), "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "runs" / "betavae-beta1-s0" / "model.safetensors").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.02)
        second = run_cli("sweep", str(path), "--out", str(out), check=False)
    finally:
        first.kill()
        first.communicate(timeout=60)
    assert second.returncode == 2
    assert second.stderr.startswith(f"error: {out} is being run by another untwine sweep (pid ")
    assert len(second.stderr.strip().splitlines()) == 1
    with study_lock(out):  # the killed driver's lock died with it: the next one takes over
        pass


def test_a_damaged_study_db_says_how_to_recover_and_the_runs_are_not_retrained(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\n")
    out = tmp_path / "out"
    first = run_study(load_study(path), out)
    logs = {row["name"]: runs.read_log(out / "runs" / row["name"]) for row in first}
    data = (out / "study.db").read_bytes()
    (out / "study.db").write_bytes(data[: len(data) // 2])

    result = run_cli("sweep", str(path), "--out", str(out), check=False)
    assert result.returncode == 2
    assert "study.db is damaged (" in result.stderr
    assert result.stderr.strip().endswith("to score the finished runs again, not retrain them")

    (out / "study.db").unlink()  # as the message says
    again = run_study(load_study(path), out)
    assert [row["metrics"] for row in again] == [row["metrics"] for row in first]
    assert {row["name"]: runs.read_log(out / "runs" / row["name"]) for row in again} == logs


def test_wait_starts_a_second_driver_when_the_first_lets_go(tmp_path):
    path = _study(tmp_path, "seeds: [0]\n")
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "untwine", "sweep", str(path), "--out", str(out), "--wait"]
    with study_lock(out):
        waiter = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        said = waiter.stderr.readline()
        assert said.startswith(f"waiting for the sweep that holds {out} (pid {os.getpid()} on ")
        time.sleep(0.5)
        assert waiter.poll() is None and not (out / "study.db").exists()
    stdout, _ = waiter.communicate(timeout=120)
    assert waiter.returncode == 0
    assert stdout.startswith("[1/1] betavae-s0: done")


def test_a_plan_times_each_setting_left_and_trains_nothing(tmp_path):
    path = _study(tmp_path, "grid: {model.name: [vae, qlae]}\nseeds: [0]\n")
    out = tmp_path / "out"
    planned = run_cli("sweep", str(path), "--plan", "--out", str(out)).stdout.splitlines()
    assert [line.split()[:2] for line in planned[1:3]] == [["vae", "1"], ["qlae", "1"]]
    assert planned[3].startswith("2 runs left:") and "of one worker" in planned[3]
    assert float(planned[1].split()[2]) > 0  # images a second, measured
    assert not out.exists()  # a plan makes no study directory
    run_cli("sweep", str(path), "--out", str(out))
    path.write_text(path.read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    planned = run_cli("sweep", str(path), "--plan", "--out", str(out), "--workers", "2").stdout
    assert "2 runs left" in planned and "with --workers 2" in planned  # the seed-1 runs
    path.write_text(path.read_text().replace("seeds: [0, 1]", "seeds: [0]"))
    done = run_cli("sweep", str(path), "--plan", "--out", str(out)).stdout
    assert done.strip() == f"study: every run is done in {out}"


def test_a_plan_times_the_scoring_on_a_workers_share_of_the_cores(tmp_path, monkeypatch):
    seen = []

    def timed_evaluate(run_dir, **options):
        seen.append(torch.get_num_threads())

    monkeypatch.setattr("untwine.sweep.plan.evaluate", timed_evaluate)
    monkeypatch.setattr("untwine.sweep.plan.worker_threads", lambda workers: 1)
    monkeypatch.setattr("untwine.sweep.pool.busy_cores", lambda: 0)  # whatever else runs here
    path = _study(tmp_path, "")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        plan_study(load_study(path), tmp_path / "out", workers=2)
        assert seen == [1] and torch.get_num_threads() == 2  # the worker's count, then back
    finally:
        torch.set_num_threads(before)


def test_only_trains_the_runs_it_names_and_the_rest_wait_for_a_later_sweep(tmp_path):
    path = _study(tmp_path, "grid: {model.beta: [1, 4]}\nseeds: [0, 1]\n")
    out = tmp_path / "out"
    planned = run_cli("sweep", str(path), "--plan", "--only", "*-s0", "--out", str(out)).stdout
    assert "2 runs left" in planned
    shown = run_cli("sweep", str(path), "--only", "*-s0", "--out", str(out))
    assert "[2/2] betavae-beta4-s0: done" in shown.stdout
    assert "study: training 2 of 4 runs, 1 at a time" in shown.stderr
    with sqlite3.connect(out / "study.db") as db:
        done = db.execute("SELECT name FROM runs WHERE status='done' ORDER BY name").fetchall()
    assert done == [("betavae-beta1-s0",), ("betavae-beta4-s0",)]
    assert "| 1 | 1/2 |" in (out / "results.md").read_text()  # the table still lists every run
    run_cli("sweep", str(path), "--only", "betavae-beta1-*", "--out", str(out))
    assert [row["status"] for row in run_study(load_study(path), out, only=["*"])] == ["done"] * 4
    done = run_cli("sweep", str(path), "--plan", "--only", "*-s1", "--out", str(out)).stdout
    assert done.strip() == f"study: every run matching *-s1 is done in {out}"

    wrong = run_cli("sweep", str(path), "--only", "vae-*", "--out", str(out), check=False)
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
    assert "no run of study 'study' matches 'vae-*'; its runs: betavae-beta1-s0" in wrong.stderr


def test_busy_cores_counts_other_processes_that_keep_a_core_running():
    spin = "while True: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    try:
        time.sleep(0.5)
        assert busy_cores() >= 2
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def test_a_sweep_on_a_busy_machine_says_so_and_how_to_leave_the_other_work_its_cores(
    tmp_path, monkeypatch
):
    path = _study(tmp_path, "")
    cores = os.cpu_count() or 1
    monkeypatch.setattr("untwine.sweep.pool.busy_cores", lambda: cores)
    shown = CliRunner().invoke(cli, ["sweep", str(path), "--plan", "--out", str(tmp_path / "o")])
    assert shown.exit_code == 0, shown.output
    warning = f"warning: other work keeps {cores} of this machine's {cores} cores busy"
    assert shown.stderr.startswith(warning) and "--workers 1, train.threads: 1" in shown.stderr
    monkeypatch.setattr("untwine.sweep.pool.busy_cores", lambda: 0)
    quiet = CliRunner().invoke(cli, ["sweep", str(path), "--plan", "--out", str(tmp_path / "o")])
    assert quiet.exit_code == 0 and quiet.stderr == ""
