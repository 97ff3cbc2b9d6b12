"""Every verb under random arguments: each option of each command (read off the CLI itself, so
a new option is fuzzed the day it lands) with values a user might type or mistype, and random
key=value overrides. Whatever the arguments, the command works (exit 0), refuses in one line
(exit 2), or stops a diverged run (exit 1, said so); never a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from untwine.cli import cli
from untwine.metrics import METRICS
from untwine.models import MODELS

TINY = ["--steps", "2", "--batch-size", "4", "--no-progress"]  # after the fuzzed ones: they win
WORDS = [*MODELS, *METRICS, "all", "dsprites", "mlp", "conv64", "cpu", "local", "linear"]
JUNK = ["", "-1", "0", "nan", "inf", "1e400", "10000000000000", "x" * 300, "ü", "a,b", "../x"]
VALUES = (
    st.integers(min_value=-3, max_value=300).map(str)
    | st.floats(min_value=-1, max_value=10).map(str)
    | st.sampled_from(WORDS + JUNK)
    | st.text(max_size=8)
)
OVERRIDE_KEYS = ["model.beta", "model.latent_dim", "model.arch", "model.nosuch", "data.name"]
OVERRIDE_KEYS += ["train.lr", "train.seed", "train.grad_clip", "train.threads", "nosection.x"]
OVERRIDES = st.builds(lambda key, value: f"{key}={value}", st.sampled_from(OVERRIDE_KEYS), VALUES)
FAST = settings(
    max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)  # the same cases every CI run: its time and its verdict do not drift
FEW = settings(FAST, max_examples=4)  # verbs whose valid cases train or score for seconds
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
LEFT_ALONE = {  # options whose values would only make a case slow, not different
    "train": {"--steps", "--batch-size", "--out", "--config", "--no-progress"},
    "sweep": {"--backend", "--address", "--out"},  # a Ray cluster takes ~30 s to start
}


def _options(verb: str) -> list[click.Option]:
    command = cli.commands[verb]
    skip = LEFT_ALONE.get(verb, set())
    return [
        p
        for p in command.params
        if isinstance(p, click.Option) and p.opts[0] not in skip and p.opts[0] != "--help"
    ]


@st.composite
def arguments(draw, verb: str) -> list[str]:
    """Some of `verb`'s options, each with a value (flags bare), and maybe overrides."""
    options = _options(verb)
    chosen = draw(st.lists(st.sampled_from(options), max_size=4, unique_by=id)) if options else []
    args = []
    for option in chosen:
        args.append(option.opts[0])
        if not option.is_flag:
            args.append(draw(VALUES))
    if verb == "train":
        args += draw(st.lists(OVERRIDES, max_size=3))
    return args


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> dict[str, Path]:
    """A trained run, a codes file and a study file: what the verbs take as their argument."""
    where = tmp_path_factory.mktemp("targets")
    run_cli("train", "--out", str(where / "run"), *TINY, "model.hidden=[8]", "--latent-dim", "3")
    rng = np.random.default_rng(0)
    np.savez(
        where / "codes.npz", codes=rng.normal(size=(300, 3)), factors=rng.integers(0, 3, (300, 2))
    )
    (where / "study.yaml").write_text(
        "base: {model: {hidden: [8]}, train: {steps: 2, batch_size: 4}}\n"
        "grid: {model.beta: [1, 2]}\nevaluate: {metrics: mig, samples: 100}\n"
    )
    return {"run": where / "run", "codes": where / "codes.npz", "study": where / "study.yaml"}


def _command(verb: str, args: list[str], targets: dict[str, Path], tmp: Path) -> list[str]:
    if verb == "train":
        return ["train", *args, *TINY, "--out", str(tmp / "run"), "model.hidden=[8]"]
    if verb == "score":
        return ["score", str(targets["codes"]), *args]
    if verb == "sweep":
        return ["sweep", str(targets["study"]), *args, "--out", str(tmp / "study")]
    if verb in ("evaluate", "traverse", "sample", "report"):
        run = tmp / "run"
        shutil.copytree(targets["run"], run)
        cheap = ["--samples", "200", "--metrics", "mig"] if verb == "evaluate" else []
        return [verb, str(run), *cheap, *args]  # a fuzzed --samples or --metrics comes later: wins
    return [verb, *args]


def _check(result) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 1:  # the one exit 1: a run that diverged, stopped and said so
        assert "error: training stopped at step" in result.stderr, result.stderr
    else:
        assert result.returncode in (0, 2), result.stderr
    if result.returncode == 2:
        assert "rror: " in result.stderr.strip().splitlines()[-1], result.stderr


VERBS = ["train", "evaluate", "traverse", "sample", "report", "score", "sweep"]
VERBS += ["datasets", "models", "metrics"]


def _fuzz(verb: str, budget: settings, targets: dict[str, Path], tmp_path_factory) -> None:
    @budget
    @given(arguments(verb))
    def case(args):
        tmp = tmp_path_factory.mktemp(verb)  # a relative --out lands here, not in the repo
        _check(run_cli(*_command(verb, args, targets, tmp), cwd=tmp, check=False))

    case()


@pytest.mark.parametrize("verb", VERBS)
def test_any_arguments_work_or_are_one_line_of_error(verb, targets, tmp_path_factory):
    _fuzz(verb, FEW if verb in ("sweep", "evaluate", "report") else FAST, targets, tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("verb", VERBS)
def test_many_more_arguments_work_or_are_one_line_of_error(verb, targets, tmp_path_factory):
    _fuzz(verb, SLOW, targets, tmp_path_factory)
