"""The README's examples run as written: the Python block and the YAML config block."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import untwine

README = (Path(__file__).parents[1] / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_python_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    scoring, training = _blocks("python")
    exec(compile(scoring, "README.md", "exec"), {})
    first_line = capsys.readouterr().out.splitlines()[0]
    assert float(first_line) > 0.9
    exec(compile(training, "README.md", "exec"), {})
    assert (tmp_path / "runs/python-demo/figures/traversal.png").exists()
    assert "torch.Size([3, 10])" in capsys.readouterr().out


def test_the_yaml_example_is_a_complete_valid_config():
    (block,) = _blocks("yaml")
    config = untwine.resolve_config(yaml.safe_load(block))
    assert config.to_dict() == untwine.resolve_config({}).to_dict()
