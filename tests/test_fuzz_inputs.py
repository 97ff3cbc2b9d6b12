"""What a careless or hostile user types: random overrides, config bytes and file-system failures.

Every input either works or is one line of error (an UntwineError, exit 2 at the CLI); nothing
raises anything else, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.conftest import run_cli
from untwine.config import SECTIONS, TrainConfig, apply_overrides, read_yaml, resolve_config
from untwine.data import DATASETS
from untwine.data.folder import FolderDataset
from untwine.errors import UntwineError, UntwineWarning
from untwine.files import atomic_write
from untwine.models import MODELS

TRAIN_KEYS = [f"train.{field}" for field in TrainConfig.__dataclass_fields__]
NAMES = [*MODELS, *DATASETS, "no-such-name", "table:", "folder:/nonexistent", ""]
SCALARS = (
    st.integers(min_value=-3, max_value=300)  # values an option might take
    | st.floats(min_value=-1, max_value=10)
    | st.integers(min_value=-(2**70), max_value=2**70)  # and values it never should
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.text(max_size=12)
    | st.sampled_from(NAMES)
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner)
)


@st.composite
def overrides(draw) -> list[str]:
    """key=value strings for a model and a dataset, over their own options (and a stray key)."""
    model, dataset = draw(st.sampled_from(list(MODELS))), draw(st.sampled_from(list(DATASETS)))
    keys = [f"model.{k}" for k in MODELS.options(model)]
    keys += [f"data.{k}" for k in DATASETS.options(dataset)] + TRAIN_KEYS + ["model.no_such"]
    pairs = draw(st.lists(st.tuples(st.sampled_from(keys), VALUES), max_size=4))
    given = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in pairs]
    return [
        f"model.name={model}",
        f"data.name={dataset}",
        *(g.removesuffix("\n...") for g in given),
    ]


ONE_LINE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _assert_one_line(error: UntwineError) -> None:
    assert "\n" not in str(error).strip(), str(error)


@ONE_LINE
@given(overrides())
def test_any_override_either_resolves_or_is_one_line_of_error(given_overrides):
    try:
        config = resolve_config(apply_overrides({}, given_overrides))
    except UntwineError as error:
        _assert_one_line(error)
        return
    assert config.to_dict()  # a resolved config is whole


@ONE_LINE
@given(st.dictionaries(st.text(max_size=8) | st.sampled_from(SECTIONS), VALUES, max_size=4))
def test_any_config_mapping_either_resolves_or_is_one_line_of_error(raw):
    try:
        resolve_config(raw)
    except UntwineError as error:
        _assert_one_line(error)


@ONE_LINE
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_a_config_file_read_or_one_line_of_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_bytes(data)
    try:
        assert isinstance(read_yaml(path), dict)
    except UntwineError as error:
        _assert_one_line(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: 5\n", "config section 'model' must be a mapping, got 5"),
        ("model: [1, 2]\n", "config section 'model' must be a mapping, got [1, 2]"),
        ("- 1\n", "must hold a mapping, got list"),
        ("a: &a [*a]\n", "expands to over 100,000 values through YAML aliases"),
    ],
)
def test_config_files_of_the_wrong_shape_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    result = run_cli("train", "--config", str(tmp_path / "c.yaml"), check=False)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path):
    """Nine levels of nine aliases stand for 9^9 = 387M strings; reading it must not try."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(UntwineError, match="expands to over 100,000 values"):
        read_yaml(tmp_path / "bomb.yaml")
    (tmp_path / "shared.yaml").write_text("base: &b {lr: 0.001}\ntrain: *b\n")  # fine
    assert read_yaml(tmp_path / "shared.yaml")["train"] == {"lr": 0.001}


def test_a_config_file_that_is_not_utf8_is_named_with_its_first_bad_byte(tmp_path):
    (tmp_path / "c.yaml").write_bytes(b"model: {name: betavae}\n# caf\xe9\n")
    with pytest.raises(UntwineError, match=r"c.yaml is not UTF-8 text \(byte 28\)"):
        read_yaml(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_a_failed_write_keeps_the_old_file_removes_its_temporary_and_says_why(
    tmp_path, monkeypatch, code, said
):
    target = tmp_path / "state.pt"
    target.write_bytes(b"the previous checkpoint")

    def refuse(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(UntwineError, match=f"cannot write {target}: {said}"):
        atomic_write(target, b"x" * 1000)
    assert target.read_bytes() == b"the previous checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


@pytest.mark.parametrize(
    ("out", "said"),
    [
        ("{tmp}/a-file/run", "a part of the path is a file, not a folder"),
        ("{tmp}/" + "n" * 300, "a name in the path is too long (255 bytes at most)"),
        ("/proc/untwine-run", ""),
    ],
)
def test_an_output_path_that_cannot_be_written_is_one_line_of_error(tmp_path, out, said):
    (tmp_path / "a-file").write_text("a file, not a folder")
    result = run_cli("train", "--out", out.format(tmp=tmp_path), "--steps", "1", check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and said in last, last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_read_only_run_folder_is_one_line_of_error(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "--out", str(run), "--steps", "2", "--batch-size", "4", "model.hidden=[8]")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    os.chmod(run, 0o555)
    try:
        if os.access(run, os.W_OK):  # root writes anywhere: nothing to test
            pytest.skip("this user can write to a read-only folder")
        result = run_cli("evaluate", str(run), "--metrics", "mig", "--samples", "100", check=False)
    finally:
        os.chmod(run, 0o755)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("permission denied")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert not [p for p in Path(run).iterdir() if p.name.startswith(".")]


def _arrays(tmp_path: Path) -> dict[str, Path]:
    """Array files a user might hand over by mistake."""
    rng = np.random.default_rng(0)
    images = rng.random((40, 8, 8)).astype(np.float32)
    nan, inf = images.copy(), images.copy()
    nan[7, 2, 3], inf[31, 0, 0] = np.nan, -np.inf
    files = {
        "empty": {"images": np.zeros((0, 8, 8), np.float32)},
        "text": {"images": np.array([["a"] * 8] * 40)},
        "complex": {"images": images + 1j},
        "nan": {"images": nan},
        "inf": {"images": inf},
    }
    paths = {}
    for name, arrays in files.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        paths[name] = tmp_path / f"{name}.npz"
    return paths


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty", "holds no observations (its array has length 0)"),
        ("text", "observations must be numbers, got dtype <U1"),
        ("complex", "observations must be real numbers, got dtype complex64"),
        ("nan", "observation 7 holds NaN or infinite values"),
        ("inf", "observation 31 holds NaN or infinite values"),
    ],
)
def test_observations_that_cannot_train_are_refused_when_the_data_loads(tmp_path, name, message):
    """A NaN pixel would otherwise surface as a NaN loss, blamed on the learning rate."""
    path = _arrays(tmp_path)[name]
    result = run_cli(
        "train", "--dataset", f"array:{path}", "--out", str(tmp_path / "run"), check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}") and message in result.stderr
    assert not (tmp_path / "run").exists()


def test_broken_and_looping_links_in_an_image_folder_are_named_once_and_skipped(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16), np.uint8)).save(folder / f"{i}.png")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "here").symlink_to(folder)  # a folder that contains itself: not walked twice
    with pytest.warns(UntwineWarning) as caught:
        dataset = FolderDataset(str(folder), size=8)
    assert len(dataset) == 12
    (message,) = [str(w.message) for w in caught]
    assert message.startswith("skipped 2 unreadable image(s)")
    assert "gone.png (a link to nothing)" in message
    assert "loop.png (a link that loops back on itself)" in message


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ("cut", "not a complete .npz file (cut short, or not an npz)"),
        ("npy", "holds one array; save codes and factors together with np.savez("),
        ("complex", "codes must hold real numbers, got complex128"),
        ("complex factors", "factors must be integer factor indices"),
    ],
)
def test_score_refuses_files_it_cannot_score_in_one_line(tmp_path, arrays, message):
    rng = np.random.default_rng(0)
    codes, factors = rng.normal(size=(200, 3)), rng.integers(0, 4, (200, 2))
    path = tmp_path / "codes.npz"
    if arrays == "cut":
        np.savez(path, codes=codes, factors=factors)
        path.write_bytes(path.read_bytes()[:500])
    elif arrays == "npy":
        path = tmp_path / "codes.npy"
        np.save(path, codes)
    elif arrays == "complex":
        np.savez(path, codes=codes + 0.5j, factors=factors)
    else:
        np.savez(path, codes=codes, factors=factors + 0j)
    result = run_cli("score", str(path), "--metrics", "mig", check=False)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_asking_for_more_than_memory_holds_is_one_line_not_a_crash(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "--out", str(run), "--steps", "2", "--batch-size", "4", "model.hidden=[8]")
    result = run_cli(
        "evaluate", str(run), "--metrics", "mig", "--samples", str(10**13), check=False
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: not enough memory for this command (") and "--samples" in last


def test_a_step_count_no_run_could_reach_is_refused(tmp_path):
    result = run_cli("train", "--out", str(tmp_path / "run"), "--steps", str(10**17), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: train.steps must be at most 1,000,000,000")
    assert not (tmp_path / "run").exists()


def test_nan_weights_are_refused_before_they_draw_blank_samples(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "--out", str(run), "--steps", "2", "--batch-size", "4", "model.hidden=[8]")
    weights = load_file(run / "model.safetensors")
    weights["decoder.net.0.bias"][0] = float("nan")
    save_file(weights, run / "model.safetensors", metadata={"step": "2"})
    for verb in (["sample", str(run), "--n", "4"], ["evaluate", str(run), "--metrics", "mig"]):
        result = run_cli(*verb, check=False)
        assert result.returncode == 2
        assert result.stderr == (
            f"error: {run}/model.safetensors is damaged (decoder.net.0.bias holds NaN or infinite "
            f"weights); retrain with `untwine train --force --out {run}`\n"
        )


@pytest.mark.parametrize("where", ["under a file", "a name too long"])
def test_sweep_and_sample_outputs_that_cannot_be_written_are_one_line(tmp_path, where):
    (tmp_path / "a-file").write_text("a file, not a folder")
    out = tmp_path / ("a-file/out" if where == "under a file" else "n" * 300)
    run = tmp_path / "run"
    run_cli("train", "--out", str(run), "--steps", "2", "--batch-size", "4", "model.hidden=[8]")
    study = tmp_path / "study.yaml"
    study.write_text("base: {model: {hidden: [8]}, train: {steps: 2, batch_size: 4}}\n")
    for command in (
        ["sweep", str(study), "--out", str(out)],
        ["sample", str(run), "--out", f"{out}.png"],
    ):
        result = run_cli(*command, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "run", "study.yaml"]
