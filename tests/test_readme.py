"""The README's examples run as written: the Python block and the YAML config block."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import untwine
from untwine.metrics import METRICS
from untwine.sweep import load_study

from .conftest import run_cli, write_survey

README = (Path(__file__).parents[1] / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_python_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scoring, registering, training = _blocks("python")
    exec(compile(scoring, "README.md", "exec"), {})
    first_line = capsys.readouterr().out.splitlines()[0]
    assert float(first_line) > 0.9
    registered = dict(METRICS)
    try:
        exec(compile(registering, "README.md", "exec"), {})
    finally:  # the example's metric leaves with this test
        METRICS.clear()
        METRICS.update(registered)
    assert capsys.readouterr().out.strip() == "1.0"
    exec(compile(training, "README.md", "exec"), {})
    assert (tmp_path / "runs/python-demo/figures/traversal.png").exists()
    assert "torch.Size([3, 10])" in capsys.readouterr().out


def test_the_yaml_example_is_a_complete_valid_config():
    block, _ = _blocks("yaml")
    config = untwine.resolve_config(yaml.safe_load(block))
    assert config.to_dict() == untwine.resolve_config({}).to_dict()


def test_the_study_example_names_the_runs_the_readme_says(tmp_path):
    _, block = _blocks("yaml")
    (tmp_path / "betas.yaml").write_text(block)
    study = load_study(tmp_path / "betas.yaml")
    names = [run.name for run in study.runs]
    assert len(names) == 12 and "betavae-beta4-s0" in names and names[-1] == "betatcvae-beta6-s2"
    assert "[4/12] betavae-beta4-s0: done in" in README and names[3] == "betavae-beta4-s0"
    assert {run.config.train.steps for run in study.runs} == {5000}


def test_the_table_example_runs_on_a_table_with_those_columns(tmp_path):
    write_survey(tmp_path / "survey.csv", 50)
    (line,) = [
        line.split("#")[0].split()
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.startswith("untwine datasets show table:")
    ]
    shown = run_cli(*line[1:], cwd=tmp_path)
    assert "[age]" in shown.stdout and "[region]" in shown.stdout
