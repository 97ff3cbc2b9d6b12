"""The procedural and official dSprites: grid, index order, rendering invariants, file loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from untwine.data import GroundTruthDataset, load_dataset, to_tensor
from untwine.data.dsprites import OFFICIAL_FILE
from untwine.errors import UntwineError

DSPRITES = load_dataset("dsprites")


def test_grid_matches_the_official_one():
    assert DSPRITES.factor_names == ("shape", "scale", "orientation", "position_x", "position_y")
    assert DSPRITES.factor_sizes == (3, 6, 40, 32, 32)
    assert len(DSPRITES) == 737_280
    assert DSPRITES.observation_shape == (1, 64, 64)


def test_index_order_is_c_order_over_the_factors():
    factors = DSPRITES.index_to_factors(
        np.array([0, 1, 32, 1024, 40 * 1024, 6 * 40 * 1024, 737_279])
    )
    np.testing.assert_array_equal(
        factors,
        [
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 1, 0],
            [0, 0, 1, 0, 0],
            [0, 1, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [2, 5, 39, 31, 31],
        ],
    )


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 737_279), min_size=1, max_size=20))
def test_index_and_factors_round_trip(indices):
    indices = np.array(indices)
    np.testing.assert_array_equal(
        DSPRITES.factors_to_index(DSPRITES.index_to_factors(indices)), indices
    )


def _image(shape=0, scale=5, orientation=0, x=10, y=10):
    return DSPRITES.observations_from_factors(np.array([[shape, scale, orientation, x, y]]))[
        0, ..., 0
    ]


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_one_position_step_moves_the_sprite_one_pixel(shape):
    here = _image(shape=shape, orientation=7, x=10, y=20)
    right = _image(shape=shape, orientation=7, x=11, y=20)
    down = _image(shape=shape, orientation=7, x=10, y=21)
    np.testing.assert_array_equal(np.roll(here, 1, axis=1), right)
    np.testing.assert_array_equal(np.roll(here, 1, axis=0), down)


def test_every_sprite_is_non_empty_and_stays_inside_the_frame():
    corners = [(0, 0), (0, 31), (31, 0), (31, 31)]
    factors = np.array(
        [[s, c, o, x, y] for s in range(3) for c in range(6) for o in range(40) for x, y in corners]
    )
    images = DSPRITES.observations_from_factors(factors)[..., 0]
    assert (images.reshape(len(images), -1).max(axis=1) == 255).all()
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1
    )
    assert border.max() == 0


def test_images_are_binary_uint8_and_a_pure_function_of_the_factors():
    indices = np.random.default_rng(0).integers(0, len(DSPRITES), 64)
    first, second = DSPRITES.observations(indices), load_dataset("dsprites").observations(indices)
    assert first.dtype == np.uint8 and set(np.unique(first)) <= {0, 255}
    np.testing.assert_array_equal(first, second)


def test_scale_grows_the_sprite_and_orientation_turns_it():
    areas = [(_image(scale=s) > 0).sum() for s in range(6)]
    assert areas == sorted(areas) and areas[0] < areas[-1] / 2.5
    assert not np.array_equal(_image(shape=0, orientation=0), _image(shape=0, orientation=3))
    # orientation runs over [0, 2π] with both ends included, as in the official file
    np.testing.assert_array_equal(_image(shape=2, orientation=0), _image(shape=2, orientation=39))


def test_the_whole_grid_costs_almost_no_memory():
    assert DSPRITES._sprites.nbytes < 1_000_000


def test_to_tensor_gives_float_chw_in_unit_range():
    x = to_tensor(DSPRITES.observations(np.arange(4)))
    assert x.shape == (4, 1, 64, 64) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def _write_official(path, sizes=(3, 2, 2, 2, 2)):
    """A small file with the official keys and layout, over a reduced grid."""
    classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
    classes = np.concatenate([np.zeros((len(classes), 1), int), classes], axis=1)
    imgs = DSPRITES.observations_from_factors(classes[:, 1:])[..., 0] // 255
    np.savez_compressed(
        path,
        imgs=imgs.astype(np.uint8),
        latents_classes=classes,
        latents_values=classes.astype(float),
    )
    return imgs


def test_official_file_is_read_into_a_packed_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNTWINE_DATA", str(tmp_path))
    imgs = _write_official(tmp_path / OFFICIAL_FILE)
    dataset = load_dataset("dsprites-official")
    assert dataset.factor_sizes == (3, 2, 2, 2, 2) and len(dataset) == 48
    np.testing.assert_array_equal(dataset.observations(np.arange(48))[..., 0], imgs * 255)
    assert list((tmp_path / "cache").glob("*.bits.npy"))
    again = load_dataset("dsprites-official")  # from the cache
    np.testing.assert_array_equal(
        again.observations(np.array([5, 7])), dataset.observations(np.array([5, 7]))
    )


def test_official_file_missing_says_where_to_put_it(tmp_path):
    with pytest.raises(UntwineError, match=r"not found.*dsprites-dataset"):
        load_dataset("dsprites-official", path=str(tmp_path / "nope.npz"))


def test_official_file_with_a_missing_key_or_bad_order_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(UntwineError, match="latents_classes"):
        load_dataset("dsprites-official", path=str(tmp_path / "a.npz"))
    classes = np.zeros((4, 6), int)
    classes[:, 5] = [1, 0, 2, 3]
    np.savez(tmp_path / "b.npz", imgs=np.zeros((4, 64, 64), np.uint8), latents_classes=classes)
    with pytest.raises(UntwineError, match="C-order"):
        load_dataset("dsprites-official", path=str(tmp_path / "b.npz"))
    (tmp_path / "c.npz").write_text("not a zip")
    with pytest.raises(UntwineError, match="cannot read"):
        load_dataset("dsprites-official", path=str(tmp_path / "c.npz"))


def _sprite_mask(indices):
    return load_dataset("dsprites").observations(indices)[..., 0] > 0


def test_color_dsprites_paints_each_sprite_one_colour_in_the_upper_half():
    dataset = load_dataset("dsprites-color")
    indices = np.arange(0, 737_280, 36_864)
    images, mask = dataset.observations(indices), _sprite_mask(indices)
    assert images.shape == (20, 64, 64, 3) and dataset.observation_shape == (3, 64, 64)
    assert np.all(images[~mask] == 0)
    for image, inside in zip(images, mask, strict=True):
        colours = np.unique(image[inside], axis=0)
        assert len(colours) == 1 and colours.min() >= 128
    assert len(np.unique(images[mask].reshape(-1, 3), axis=0)) > 10  # colours vary by image
    np.testing.assert_array_equal(images, dataset.observations(indices))  # pure in the index


def test_noisy_dsprites_puts_the_white_sprite_over_uniform_noise():
    dataset = load_dataset("dsprites-noisy")
    indices = np.arange(5) * 100_003
    images, mask = dataset.observations(indices), _sprite_mask(indices)
    assert np.all(images[mask] == 255)
    background = images[~mask]
    assert abs(background.mean() - 127.5) < 2 and background.std() > 70
    np.testing.assert_array_equal(images, dataset.observations(indices))


@pytest.mark.parametrize("name", ["dsprites-color", "dsprites-noisy"])
def test_scoring_draws_the_nuisance_afresh_from_the_rng(name):
    dataset = load_dataset(name)
    factors = dataset.index_to_factors(np.array([7, 70_000]))
    first = dataset.observations_from_factors(factors, np.random.default_rng(0))
    again = dataset.observations_from_factors(factors, np.random.default_rng(0))
    other = dataset.observations_from_factors(factors, np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.array_equal(first > 0, other > 0) or name == "dsprites-noisy"


def test_correlated_dsprites_ties_its_pair_and_leaves_the_rest_uniform():
    dataset = load_dataset("dsprites-correlated", factors=("shape", "scale"), sigma=0.1)
    indices = dataset.sample_indices(30_000, torch.Generator().manual_seed(0))
    factors = dataset.index_to_factors(indices)
    measured = np.corrcoef(factors[:, 0], factors[:, 1])[0, 1]
    assert measured == pytest.approx(dataset.correlation, abs=0.02) and measured > 0.85
    assert abs(np.corrcoef(factors[:, 3], factors[:, 4])[0, 1]) < 0.03
    counts = np.bincount(factors[:, 2], minlength=40)
    assert counts.min() > 0.8 * counts.mean()
    loose = load_dataset("dsprites-correlated", sigma=10.0).correlation
    assert loose < 0.01 < dataset.correlation


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"factors": ("shape", "colour")}, "must name two different factors of shape"),
        ({"factors": ("shape", "shape")}, "must name two different factors"),
        ({"sigma": 0.0}, "sigma must be positive"),
    ],
)
def test_correlated_dsprites_refuses_bad_options(options, message):
    with pytest.raises(UntwineError, match=message):
        load_dataset("dsprites-correlated", **options)


class _Grid(GroundTruthDataset):
    """A blank grid of any factor sizes: pairs are drawn from the factors alone."""

    observation_shape = (1,)

    def __init__(self, sizes):
        self.factor_sizes = tuple(sizes)
        self.factor_names = tuple(f"f{i}" for i in range(len(sizes)))

    def observations(self, indices):
        return np.zeros((len(indices), 1), np.float32)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(1, 6), min_size=2, max_size=6).filter(lambda s: sum(v > 1 for v in s) > 1),
    st.integers(0, 2**31),
    st.data(),
)
def test_a_pair_differs_in_exactly_k_factors_each_changed_to_another_value(sizes, seed, data):
    grid = _Grid(sizes)
    varying = np.array(sizes) > 1
    k = data.draw(st.sampled_from([-1, *range(1, int(varying.sum()))]))
    first, second = grid.sample_pairs(200, k, torch.Generator().manual_seed(seed))
    a, b = grid.index_to_factors(first), grid.index_to_factors(second)
    differ = a != b
    assert not differ[:, ~varying].any()
    if k == -1:
        assert differ.sum(1).min() >= 1 and differ.sum(1).max() <= varying.sum() - 1
    else:
        assert (differ.sum(1) == k).all()
    again = grid.sample_pairs(200, k, torch.Generator().manual_seed(seed))
    np.testing.assert_array_equal(np.stack(again), np.stack([first, second]))


def test_pairs_with_k_drawn_cover_every_count_and_value_evenly():
    dsprites = load_dataset("dsprites")
    first, second = dsprites.sample_pairs(20_000, -1, torch.Generator().manual_seed(0))
    a, b = dsprites.index_to_factors(first), dsprites.index_to_factors(second)
    counts = np.bincount((a != b).sum(1), minlength=5)
    assert counts[0] == 0 and np.abs(counts[1:] / 20_000 - 0.25).max() < 0.02  # k in 1..4
    shapes = b[(a[:, 0] == 0) & (b[:, 0] != 0), 0]  # square changed: ellipse or heart, evenly
    assert set(shapes) == {1, 2} and abs(np.mean(shapes == 1) - 0.5) < 0.05


@pytest.mark.parametrize("k", [0, 5, -2])
def test_a_pair_count_outside_1_to_f_minus_1_is_a_one_line_error(k):
    with pytest.raises(UntwineError, match=r"^k must be -1 \(drawn for each pair\) or 1\.\.4, as"):
        load_dataset("dsprites").sample_pairs(4, k, torch.Generator())
