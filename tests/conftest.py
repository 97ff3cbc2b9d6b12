"""Shared fixtures: tiny configs and a CLI runner that drives `untwine` as a user would."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest

# Set before any test module loads a dataset at import time: no test touches the user's data root.
SESSION_DATA_ROOT = tempfile.mkdtemp(prefix="untwine-test-data-")
os.environ["UNTWINE_DATA"] = SESSION_DATA_ROOT

from untwine.cli import cli  # noqa: E402
from untwine.config import apply_overrides, resolve_config  # noqa: E402
from untwine.models import MODELS, VAEBase  # noqa: E402

VAES = [name for name in MODELS.names() if issubclass(MODELS.get(name), VAEBase)]


def assert_gradient_reaches_only(model, params, label) -> None:
    """After a backward: each of `params` got a non-zero gradient, no other parameter did, and
    every parameter still requires grad (nothing was left frozen)."""
    own = {id(param) for param in params}
    for name, param in model.named_parameters():
        reached = param.grad is not None and param.grad.abs().sum() > 0
        assert reached == (id(param) in own), (label, name)
        assert param.requires_grad, name


def tiny_config(**overrides):
    """A run small enough for a test: few steps, small batches, frequent logs and checkpoints."""
    base = {
        "train.steps": 20,
        "train.batch_size": 8,
        "train.log_every": 5,
        "train.checkpoint_every": 10,
        "train.device": "cpu",
        "model.latent_dim": 4,
        "model.hidden": "[64]",  # the default 1200 x 1200 MLP is 12M weights: slow to step and save
    }
    base.update(overrides)
    return resolve_config(apply_overrides({}, [f"{k}={v}" for k, v in base.items()]))


def write_survey(path: Path, n: int) -> list[str]:
    """A CSV like the README's survey: age and region (factors), income and hours (features)."""
    rng = np.random.default_rng(0)
    lines = ["age,region,income,hours"]
    for _ in range(n):
        age, region = rng.integers(18, 80), rng.choice(["north", "south"])
        lines.append(f"{age},{region},{1000 + 30 * age + rng.normal():.2f},{rng.normal():.3f}")
    path.write_text("\n".join(lines) + "\n")
    return lines


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run `untwine ARGS` as a user's shell would, but in this process: its exit status, stdout
    and stderr (an uncaught exception becomes status 1 and its traceback on stderr, as in a
    process). Tests where the process itself matters (signals, kills) use `run_cli_process`."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        _working_directory(cwd),
        _environment(env or {}),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            cli.main(args=list(args), prog_name="untwine")
            code = 0
        except SystemExit as exit_:  # as the interpreter ends a process
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
            code = 1 if isinstance(exit_.code, str) else exit_.code or 0
        except Exception:
            traceback.print_exc()
            code = 1
    result = subprocess.CompletedProcess(
        ["untwine", *args], code, stdout.getvalue(), stderr.getvalue()
    )
    if check and result.returncode != 0:
        raise AssertionError(f"untwine {' '.join(args)} failed:\n{result.stderr}")
    return result


def run_cli_process(
    *args: str, cwd: Path | None = None, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run `python -m untwine ARGS` in a subprocess and return its result."""
    result = subprocess.run(
        [sys.executable, "-m", "untwine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"untwine {' '.join(args)} failed:\n{result.stderr}")
    return result


@contextlib.contextmanager
def _working_directory(path: Path | None):
    before = os.getcwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _environment(changes: dict[str, str]):
    before = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def isolated_data_root(tmp_path, monkeypatch):
    """No test reads or writes the user's real data root."""
    monkeypatch.setenv("UNTWINE_DATA", str(tmp_path / "data"))


def pytest_configure(config):
    """Let Ctrl-C reach the processes the tests start, as at a terminal.

    A suite started in the background of a script inherits SIGINT ignored, and so would every
    process it starts; Python keeps an inherited SIG_IGN, so the Ctrl-C tests could not work.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's data root (the Shapes3D geometry cache lives there)."""
    shutil.rmtree(SESSION_DATA_ROOT, ignore_errors=True)
