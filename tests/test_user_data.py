"""The user's own data: folders, arrays and tables, their split, factors and errors."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from untwine.config import apply_overrides, resolve_config
from untwine.data import folder, load_dataset, to_tensor
from untwine.errors import UntwineError, UntwineWarning
from untwine.metrics import beta_vae_score, factor_vae_score, mig
from untwine.metrics._sampling import sample_codes

from .conftest import run_cli


def _write_images(folder, n=6, size=(80, 60), mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_a_folder_is_cropped_resized_and_split(tmp_path):
    _write_images(tmp_path / "imgs" / "a", n=5)
    _write_images(tmp_path / "imgs" / "b", n=5, size=(30, 50))
    dataset = load_dataset("folder", path=str(tmp_path / "imgs"), size=32)
    assert len(dataset) == 10 and dataset.observation_shape == (3, 32, 32)
    images = dataset.observations(np.arange(10))
    assert images.dtype == np.uint8 and images.shape == (10, 32, 32, 3)
    assert len(dataset.validation_indices) == 1 and len(dataset.training_indices) == 9
    assert not dataset.factor_names


def test_a_grey_folder_stays_grey_and_colour_can_be_forced(tmp_path):
    _write_images(tmp_path / "g", mode="L")
    assert load_dataset("folder", path=str(tmp_path / "g")).observation_shape == (1, 64, 64)
    rgb = load_dataset("folder", path=str(tmp_path / "g"), color="rgb")
    assert rgb.observation_shape == (3, 64, 64)


def test_unreadable_images_are_named_and_skipped(tmp_path):
    _write_images(tmp_path / "imgs", n=4)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "imgs" / "notes.txt").write_text("ignored: not an image suffix")
    with pytest.warns(UntwineWarning, match=r"skipped 1 unreadable image.*broken\.png"):
        dataset = load_dataset("folder", path=str(tmp_path / "imgs"))
    assert len(dataset) == 4


def test_a_folder_is_decoded_once_and_cached(tmp_path, monkeypatch):
    _write_images(tmp_path / "imgs", n=3)
    first = load_dataset("folder", path=str(tmp_path / "imgs"))
    monkeypatch.setattr(folder, "_read_images", lambda *a: pytest.fail("decoded twice"))
    again = load_dataset("folder", path=str(tmp_path / "imgs"))
    np.testing.assert_array_equal(first.observations([0, 1, 2]), again.observations([0, 1, 2]))
    monkeypatch.undo()
    _write_images(tmp_path / "imgs", n=4)  # a new file: the cache no longer applies
    assert len(load_dataset("folder", path=str(tmp_path / "imgs"))) == 4


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "no images in"),
        (lambda p: (p.mkdir(), (p / "x.png").write_text("junk")), "none of the 1 images"),
    ],
)
def test_bad_folders_give_one_clear_error(tmp_path, setup, message):
    setup(tmp_path / "imgs")
    with warnings.catch_warnings(), pytest.raises(UntwineError, match=message):
        warnings.simplefilter("ignore", UntwineWarning)
        load_dataset("folder", path=str(tmp_path / "imgs"))


def test_arrays_in_every_layout_give_the_same_images(tmp_path):
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", nhwc)
    np.savez(tmp_path / "nchw.npz", images=nhwc.transpose(0, 3, 1, 2))
    np.save(tmp_path / "grey.npy", nhwc[..., 0])
    a = load_dataset("array", path=str(tmp_path / "nhwc.npy"))
    b = load_dataset("array", path=str(tmp_path / "nchw.npz"))
    grey = load_dataset("array", path=str(tmp_path / "grey.npy"))
    np.testing.assert_array_equal(a.observations(np.arange(12)), nhwc)
    np.testing.assert_array_equal(b.observations(np.arange(12)), nhwc)
    np.testing.assert_array_equal(grey.observations(np.arange(12)), nhwc[..., :1])
    assert a.observation_shape == b.observation_shape == (3, 64, 64)
    assert isinstance(a._data, np.memmap)  # a .npy is never read whole


def test_float_arrays_are_used_as_they_are_and_rows_suggest_the_mlp(tmp_path):
    images = np.random.default_rng(0).normal(size=(8, 1, 28, 28))
    np.save(tmp_path / "f.npy", images)
    dataset = load_dataset("array", path=str(tmp_path / "f.npy"))
    x = to_tensor(dataset.observations(np.arange(8)))
    torch.testing.assert_close(x, torch.from_numpy(images).float())
    config = resolve_config(apply_overrides({}, [f"data.name=array:{tmp_path / 'f.npy'}"]))
    assert config.model.options["arch"] == "mlp"  # 28x28 is not the convnets' 64x64
    np.save(tmp_path / "rows.npy", np.zeros((10, 5)))
    config = resolve_config(apply_overrides({}, [f"data.name=array:{tmp_path / 'rows.npy'}"]))
    assert config.model.options["arch"] == "mlp"
    assert config.model.options["likelihood"] == "gaussian"


@pytest.mark.parametrize(
    ("arrays", "options", "message"),
    [
        ({"images": np.zeros((4, 5, 6, 7))}, {}, r"cannot use an array of shape \(4, 5, 6, 7\)"),
        ({"a": np.zeros((4, 3)), "b": np.zeros((4, 3))}, {}, "name one with data.key"),
        ({"images": np.zeros((4, 3))}, {"key": "other"}, "has no array 'other'"),
        ({"images": np.zeros((4, 3)), "factors": np.zeros((3, 2))}, {}, "factors must be"),
    ],
)
def test_bad_arrays_give_one_clear_error(tmp_path, arrays, options, message):
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(UntwineError, match=message):
        load_dataset("array", path=str(tmp_path / "a.npz"), **options)


def _planted(tmp_path, n=3000):
    """Rows that are a noisy copy of three independent factors: the answer is known."""
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 4, n), rng.integers(0, 5, n), rng.uniform(0, 1, n)], 1)
    rows = factors + rng.normal(0, 0.01, factors.shape)
    np.savez(
        tmp_path / "planted.npz",
        rows=rows,
        factors=factors,
        factor_names=np.array(["a", "b", "c"]),
    )
    return load_dataset("array", path=str(tmp_path / "planted.npz"), bins=10)


def test_factors_are_classes_with_continuous_ones_binned(tmp_path):
    dataset = _planted(tmp_path)
    assert dataset.factor_names == ("a", "b", "c") and dataset.factor_sizes == (4, 5, 10)
    counts = np.bincount(dataset.index_to_factors(np.arange(len(dataset)))[:, 2])
    assert counts.min() >= 290  # quantile bins hold equal shares
    assert any("discretised into 10 quantile bins" in note for note in dataset.notes)


def test_factor_draws_keep_what_the_metrics_ask_for(tmp_path):
    dataset, rng = _planted(tmp_path), np.random.default_rng(1)
    factors = dataset.sample_factors(500, rng)
    fixed = rng.integers(0, 3, 500)
    shared = dataset.resample_sharing(factors, fixed, rng)
    np.testing.assert_array_equal(shared[np.arange(500), fixed], factors[np.arange(500), fixed])
    assert (shared != factors).any(axis=1).mean() > 0.9  # the other factors were redrawn
    rows = dataset.observations_from_factors(shared, rng)
    np.testing.assert_allclose(np.round(rows[:, :2]), shared[:, :2])


def test_supervised_metrics_read_a_planted_representation_on_user_data(tmp_path):
    dataset, rng = _planted(tmp_path), np.random.default_rng(0)
    identity = lambda rows: rows.astype(np.float64)  # noqa: E731
    noise = lambda rows: rng.normal(size=(len(rows), 3))  # noqa: E731
    codes, factors = sample_codes(dataset, identity, 2000, rng)
    assert mig(codes, factors) > 0.6
    assert mig(sample_codes(dataset, noise, 2000, rng)[0], factors) < 0.05
    small = {"num_train": 300, "num_eval": 200}
    assert beta_vae_score(dataset, identity, rng, **small)["eval_accuracy"] > 0.95
    factor_vae = factor_vae_score(dataset, identity, rng, **small, num_variance_estimate=1000)
    assert factor_vae["eval_accuracy"] > 0.95


def test_the_split_is_fixed_by_its_seed_and_training_never_sees_validation(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((200, 4), np.float32))
    dataset = load_dataset("array", path=str(tmp_path / "x.npy"), validation=0.25)
    same = load_dataset("array", path=str(tmp_path / "x.npy"), validation=0.25)
    other = load_dataset("array", path=str(tmp_path / "x.npy"), validation=0.25, split_seed=1)
    assert len(dataset.validation_indices) == 50
    np.testing.assert_array_equal(dataset.validation_indices, same.validation_indices)
    assert not np.array_equal(dataset.validation_indices, other.validation_indices)
    drawn = dataset.sample_indices(5000, torch.Generator().manual_seed(0))
    assert not set(drawn) & set(dataset.validation_indices)
    assert len(set(drawn)) == 150
    held = dataset.held_out_indices(20, np.random.default_rng(0))
    assert set(held) <= set(dataset.validation_indices) and len(held) == 20
    with pytest.raises(UntwineError, match=r"data.validation must be in \[0, 1\)"):
        load_dataset("array", path=str(tmp_path / "x.npy"), validation=1.0)


def _write_table(path, n=300):
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["height", "colour", "x1", "x2"])
        for i in range(n):
            height = rng.uniform(1, 2)
            colour = ["red", "green", "blue"][i % 3]
            writer.writerow([height, colour, 10 + 5 * height, i % 3 + rng.normal() * 0.1])


def test_a_table_is_standardised_on_its_training_rows(tmp_path):
    _write_table(tmp_path / "t.csv")
    dataset = load_dataset("table", path=str(tmp_path / "t.csv"), factors=("height", "colour"))
    assert dataset.observation_shape == (2,) and dataset.feature_names == ("x1", "x2")
    assert dataset.factor_sizes == (20, 3)
    rows = dataset.observations(dataset.training_indices)
    np.testing.assert_allclose(rows.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(rows.std(axis=0), 1, atol=1e-5)
    colours = dataset.index_to_factors(np.arange(3))[:, 1]
    np.testing.assert_array_equal(colours, [2, 1, 0])  # red, green, blue sorted: blue 0


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("a,b\n1,2\n3,x\n", {}, r"column 'b' line 3 holds 'x', not a number"),
        ("a,b\n1,2\n3,\n", {}, r"column 'b' line 3 is empty"),
        ("a,b\n1,2\n3,4\n", {"factors": ("c",)}, r"has no column 'c'; it has a, b"),
        ("a,b\n1,2\n3\n", {}, r"line 3 has 1 fields, the header 2"),
        ("a,b\n1,2\n", {}, "needs a header and at least two rows"),
    ],
)
def test_bad_tables_give_one_clear_error(tmp_path, text, options, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(UntwineError, match=message):
        load_dataset("table", path=str(tmp_path / "t.csv"), **options)


def test_name_colon_path_is_shorthand_and_the_path_is_made_absolute(tmp_path, monkeypatch):
    _write_table(tmp_path / "t.csv")
    monkeypatch.chdir(tmp_path)
    config = resolve_config(apply_overrides({}, ["data.name=table:t.csv"]))
    assert config.data.name == "table" and config.data.options["path"] == str(tmp_path / "t.csv")
    assert config.model.options["arch"] == "mlp"
    assert config.model.options["likelihood"] == "gaussian"
    chosen = resolve_config(apply_overrides({}, ["data.name=table:t.csv", "model.arch=conv64"]))
    assert chosen.model.options["arch"] == "conv64"  # the user's choice wins
    with pytest.raises(UntwineError, match="dataset 'dsprites' takes no path"):
        resolve_config(apply_overrides({}, ["data.name=dsprites:x"]))


def test_cli_trains_and_scores_a_table_with_factors(tmp_path):
    _write_table(tmp_path / "survey.csv")
    shown = run_cli(
        "datasets",
        "show",
        "table:survey.csv",
        "--factors",
        "height,colour",
        "--n",
        "3",
        cwd=tmp_path,
    )
    assert "[colour]" in shown.stdout and "quantile bins" in shown.stdout
    run_cli(
        "train",
        "--dataset",
        "table:survey.csv",
        "--factors",
        "height,colour",
        "--steps",
        "30",
        "--latent-dim",
        "3",
        "--no-progress",
        "train.batch_size=16",
        "model.hidden=[32]",
        cwd=tmp_path,
    )
    run = tmp_path / "runs" / "betavae-table-survey-s0"
    assert (run / "figures" / "traversal.png").exists()
    run_cli("evaluate", str(run), "--samples", "200", "--metrics", "mig,beta_vae", cwd=tmp_path)
    scores = json.loads((run / "metrics.json").read_text())
    assert 0 <= scores["mig"] <= 1 and "reconstruction" in scores


def test_cli_scores_unlabelled_data_without_supervised_metrics(tmp_path):
    _write_images(tmp_path / "imgs", n=20, size=(64, 64))
    run = tmp_path / "run"
    args = ["--steps", "4", "--latent-dim", "2", "--no-progress", "train.batch_size=4"]
    args.append("model.hidden=[64]")
    run_cli("train", "--dataset", f"folder:{tmp_path / 'imgs'}", "--out", str(run), *args)
    run_cli("evaluate", str(run), "--samples", "50")
    scores = json.loads((run / "metrics.json").read_text())
    assert "unsupervised.gaussian_total_correlation" in scores and "mig" not in scores
    refused = run_cli("evaluate", str(run), "--metrics", "mig", check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: metric 'mig' needs ground-truth factors, and this dataset has none; "
        "without factors: unsupervised, tc_critic (give factors to score the rest)"
    )


def test_transparent_pixels_are_laid_on_white(tmp_path):
    (tmp_path / "imgs").mkdir()
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[:4, :, :] = (255, 0, 0, 255)  # opaque red top half, transparent bottom half
    Image.fromarray(pixels, "RGBA").save(tmp_path / "imgs" / "a.png")
    image = load_dataset("folder", path=str(tmp_path / "imgs"), size=8).observations([0])[0]
    np.testing.assert_array_equal(image[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(image[7, 0], [255, 255, 255])


def _write_frames(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):  # frame i is all grey level 10 * i: its own fingerprint
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(folder / name)


def test_frames_pair_up_in_the_natural_order_of_their_names_within_each_folder(tmp_path):
    _write_frames(tmp_path / "clips" / "a", [f"frame{i}.png" for i in range(12)])
    _write_frames(tmp_path / "clips" / "b", ["t1.png", "t2.png"])
    (tmp_path / "clips" / "a" / "frame5.png").write_bytes(b"not a png")  # a gap in clip a
    with pytest.warns(UntwineWarning, match="skipped 1 unreadable"):
        dataset = load_dataset(
            "folder", path=str(tmp_path / "clips"), size=8, frames=True, validation=0
        )
    first, second = dataset.sample_pairs(500, 1, torch.Generator().manual_seed(0))
    levels = lambda idx: dataset.observations(idx)[:, 0, 0, 0] // 10  # noqa: E731
    drawn = set(zip(levels(first).tolist(), levels(second).tolist(), strict=True))
    clip_a = {(i, i + 1) for i in range(11) if 5 not in (i, i + 1)}  # frame9 -> frame10
    assert drawn == clip_a | {(0, 1)}  # clip b's t1 -> t2 reads levels 0 and 1 too
    assert len(dataset._training_pairs()) == len(clip_a) + 1  # never across the two clips


def test_datasets_show_draws_a_folders_frames_as_they_pair(tmp_path):
    _write_frames(tmp_path / "clip", [f"f{i}.png" for i in range(6)])
    out = tmp_path / "pairs.png"
    args = ("datasets", "show", f"folder:{tmp_path / 'clip'}", "data.size=8", "data.frames=true")
    result = run_cli(*args, "--pairs", "1", "--n", "3", "--out", str(out))
    assert f"3 pairs of folder:{tmp_path / 'clip'} as the data pairs them:" in result.stdout
    assert Image.open(out).size[0] > 0


def test_frames_keep_only_pairs_inside_the_training_split(tmp_path):
    _write_frames(tmp_path / "clip", [f"{i:03d}.png" for i in range(20)])
    dataset = load_dataset("folder", path=str(tmp_path / "clip"), size=8, frames=True)
    first, second = dataset.sample_pairs(300, 1, torch.Generator().manual_seed(0))
    held = set(dataset.validation_indices.tolist())
    assert not held & (set(first.tolist()) | set(second.tolist()))
    kept = sum(not {i, i + 1} & held for i in range(19))  # frames 000..019 are images 0..19
    assert f"19 pairs, {kept} with both observations in the training split" in dataset.notes
    assert len(set(zip(first.tolist(), second.tolist(), strict=True))) == kept


def test_an_npz_pairs_array_is_drawn_as_given(tmp_path):
    np.savez(
        tmp_path / "pairs.npz",
        images=np.zeros((10, 8, 8), np.uint8),
        pairs=np.array([[0, 3], [4, 7], [8, 9]]),
    )
    dataset = load_dataset("array", path=str(tmp_path / "pairs.npz"), validation=0)
    first, second = dataset.sample_pairs(200, 1, torch.Generator().manual_seed(0))
    assert set(zip(first.tolist(), second.tolist(), strict=True)) == {(0, 3), (4, 7), (8, 9)}
    with pytest.warns(UntwineWarning, match="model.k=2 is not used: this data's pairs come as"):
        dataset.check_pairs(2, "model.k")


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (np.array([[0, 3], [4, 10]]), r"pairs row 1 is \[4, 10\], outside the 10 observations"),
        (np.array([[0, -1]]), r"pairs row 0 is \[0, -1\], outside the 10 observations"),
        (np.array([0, 3]), r"pairs must be \(M, 2\) observation indices, got \(2,\)"),
        (np.array([[0.0, 3.0]]), "pairs must be integer indices, got dtype float64"),
    ],
)
def test_a_bad_pairs_array_is_a_one_line_error(tmp_path, pairs, message):
    np.savez(tmp_path / "bad.npz", images=np.zeros((10, 8, 8), np.uint8), pairs=pairs)
    with pytest.raises(UntwineError, match=message):
        load_dataset("array", path=str(tmp_path / "bad.npz"))


def test_bad_pair_data_stops_training_with_one_line_and_exit_2(tmp_path):
    _write_frames(tmp_path / "one", ["only.png"])
    np.save(tmp_path / "plain.npy", np.zeros((10, 8, 8), np.uint8))
    tiny = ("--steps", "2", "--batch-size", "4", "model.hidden=[8]")
    cases = [
        (
            ("--dataset", f"folder:{tmp_path / 'one'}", "data.size=8", "data.frames=true"),
            "data.frames pairs consecutive frames of one folder, but no folder in",
        ),
        (("--dataset", f"array:{tmp_path / 'plain.npy'}"), "this data has no pairs: a folder"),
        (("model.k=7",), "model.k must be -1 (drawn for each pair) or 1..4, as pairs here"),
    ]
    for i, (data, message) in enumerate(cases):
        out = tmp_path / f"run{i}"
        args = ("train", "--model", "adagvae", "--out", str(out), *tiny, *data)
        result = run_cli(*args, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
