"""Damaged run directories, as a disk, a kill or a careless hand leaves them.

Every file of a real run is emptied, cut in half, overwritten with random or non-UTF-8 bytes,
swapped for another run's, or replaced by a folder (figures/ by a file), and every verb that
reads a run is run on it. Each case must end in exit 0, or in exit 2 with one line that names
the damaged file and no traceback. A verb that fails changes nothing; a resume that succeeds
leaves the run's weights as they were before the damage (it rewrites them from state.pt).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import run_cli

TRAIN = [
    "--steps",
    "20",
    "--batch-size",
    "8",
    "--no-progress",
    "train.checkpoint_every=10",
    "train.log_every=5",
    "model.hidden=[64]",
]
RUN = "{run}"
VERBS: dict[str, tuple[list[str], set[str]]] = {  # the arguments, and what the verb writes
    "evaluate": (["evaluate", RUN, "--metrics", "mig", "--samples", "200"], {"metrics.json"}),
    "traverse": (["traverse", RUN], {"figures"}),
    "sample": (["sample", RUN, "--n", "4"], {"figures"}),
    "report": (["report", RUN], {"figures", "report.html"}),
    "resume": (["train", "--out", RUN, "--latent-dim", "4", *TRAIN], {"figures"}),
}
READS = {  # a damaged file a verb reads must stop it: scoring or resuming from it would lie
    "evaluate": {"config.yaml", "model.safetensors"},
    "traverse": {"config.yaml", "model.safetensors"},
    "sample": {"config.yaml", "model.safetensors"},
    "report": {"config.yaml", "model.safetensors", "metrics.json"},
    "resume": {"config.yaml", "state.pt"},
}
UNDETECTABLE = {  # well-formed files that only look wrong beside the rest of the run
    ("config.yaml", "dataset edited", "sample"),  # sampling draws from the prior: reads no data
    ("metrics.json", "another run's", "report"),  # valid scores, of a run at the same step
}
FILES = ["config.yaml", "model.safetensors", "state.pt", "log.jsonl", "metrics.json", "figures"]


@pytest.fixture(scope="module")
def runs_to_damage(tmp_path_factory) -> tuple[Path, Path]:
    """A finished, evaluated run with 4 latents, and another with 3 to take files from."""
    made = []
    for latents in ("4", "3"):
        run = tmp_path_factory.mktemp("run") / f"z{latents}"
        run_cli("train", "--out", str(run), "--latent-dim", latents, *TRAIN)
        run_cli("evaluate", str(run), "--metrics", "mig", "--samples", "200")
        made.append(run)
    return made[0], made[1]


def damages(name: str) -> dict[str, Callable[[Path, Path], None]]:
    """Each way `name` gets damaged: a function of (its path, the other run's copy)."""

    def file_instead(path: Path, data: bytes) -> None:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        path.write_bytes(data)

    if name == "figures":
        return {"a file": lambda path, _: file_instead(path, b"not a folder")}
    cases = {
        "emptied": lambda path, _: path.write_bytes(b""),
        "cut in half": lambda path, _: path.write_bytes(
            path.read_bytes()[: path.stat().st_size // 2]
        ),
        "random bytes": lambda path, _: path.write_bytes(os.urandom(300)),
        "not UTF-8": lambda path, _: path.write_bytes(b"\xff\xfe caf\xe9 \x00\x81\n"),
        "another run's": lambda path, other: shutil.copy(other, path),
        "a folder": lambda path, _: (path.unlink(), path.mkdir()),
    }
    if name in ("state.pt", "model.safetensors"):
        cases["a pickle that runs code"] = lambda path, _: path.write_bytes(_payload(path))
    if name == "config.yaml":
        cases["latent_dim edited"] = lambda path, _: _edit(path, "latent_dim: 4", "latent_dim: 5")
        cases["dataset edited"] = lambda path, _: _edit(path, "name: dsprites", "name: shapes3d")
    return cases


class _Payload:
    """Unpickling this runs a command: what a poisoned download would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload(path: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"step": 20, "model": _Payload(path.parent / "pwned")}, buffer)
    return buffer.getvalue()


def _edit(path: Path, old: str, new: str) -> None:
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


CASES = [(name, damage, verb) for name in FILES for damage in damages(name) for verb in VERBS]
# CI runs every damage under the verbs that start fastest, and the rest as one rotation
FAST = {"evaluate", "sample", "resume"}
CI_CASES = {case for i, case in enumerate(CASES) if case[2] in FAST or i % 5 == 0}


@pytest.mark.parametrize(
    ("name", "damage", "verb"),
    [pytest.param(*case, marks=() if case in CI_CASES else pytest.mark.slow) for case in CASES],
)
def test_a_damaged_run_is_named_in_one_line_and_nothing_else_changes(
    runs_to_damage, tmp_path, name, damage, verb
):
    base, other = runs_to_damage
    run = tmp_path / "run"
    shutil.copytree(base, run)
    damages(name)[damage](run / name, other / name)
    before = _snapshot(run)
    arguments, writes = VERBS[verb]

    result = run_cli(*[a.format(run=run) for a in arguments], check=False)

    assert "Traceback" not in result.stderr, result.stderr
    assert not (run / "pwned").exists(), "a file in the run ran code"
    assert result.returncode in (0, 2), result.stderr
    if name in READS[verb] and (name, damage, verb) not in UNDETECTABLE:
        assert result.returncode == 2, f"{verb} used a damaged {name}"
    after = _snapshot(run)
    if result.returncode == 2:
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and str(run) in last, last
        assert after == before, "a refused command changed the run"
        return
    kept = {k for k in before if k.split("/")[0] not in writes and k != "model.safetensors"}
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    weights = load_file(run / "model.safetensors")  # repaired from state.pt if it was damaged
    reference = load_file(base / "model.safetensors")
    assert all((weights[k] == reference[k]).all() for k in reference)
