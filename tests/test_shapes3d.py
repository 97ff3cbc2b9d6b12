"""Procedural Shapes3D: the official grid and order, purity, hues, and every factor visible."""

from __future__ import annotations

import colorsys
import itertools

import numpy as np
import pytest

from untwine.data import load_dataset, shapes3d
from untwine.data.shapes3d import HUES, geometry_cache

SHAPES3D = load_dataset("shapes3d")


def test_grid_matches_the_official_one():
    assert SHAPES3D.factor_names == (
        "floor_hue",
        "wall_hue",
        "object_hue",
        "scale",
        "shape",
        "orientation",
    )
    assert SHAPES3D.factor_sizes == (10, 10, 10, 8, 4, 15)
    assert len(SHAPES3D) == 480_000
    assert SHAPES3D.observation_shape == (3, 64, 64)
    np.testing.assert_allclose(HUES, np.arange(10) / 10)


def test_index_order_is_c_order_over_the_factors():
    factors = SHAPES3D.index_to_factors(np.array([0, 1, 15, 60, 480, 4800, 48_000, 479_999]))
    np.testing.assert_array_equal(
        factors,
        [
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 1, 0, 0],
            [0, 0, 1, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0],
            [9, 9, 9, 7, 3, 14],
        ],
    )


def _image(floor=0, wall=3, obj=6, scale=4, shape=0, orientation=7):
    factors = np.array([[floor, wall, obj, scale, shape, orientation]])
    return SHAPES3D.observations_from_factors(factors)[0].astype(int)


def test_images_are_uint8_rgb_and_a_pure_function_of_the_factors():
    indices = np.random.default_rng(0).integers(0, len(SHAPES3D), 32)
    first = SHAPES3D.observations(indices)
    assert first.shape == (32, 64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, load_dataset("shapes3d").observations(indices))


@pytest.mark.parametrize("axis", range(6))
def test_every_step_along_every_factor_changes_the_image(axis):
    size = SHAPES3D.factor_sizes[axis]
    for shape in range(4):
        base = [0, 3, 6, 4, shape, 7]
        images = []
        for value in range(size):
            base[axis] = value
            images.append(_image(*base))
        for a, b in itertools.pairwise(images):
            assert np.abs(a - b).mean() > 1.0, (axis, shape)  # grey levels per pixel


def _hue(pixel):
    return colorsys.rgb_to_hsv(*(np.asarray(pixel) / 255))[0]


@pytest.mark.parametrize("value", range(10))
def test_each_surface_shows_its_official_hue(value):
    image = _image(floor=value, wall=(value + 3) % 10, obj=(value + 6) % 10, scale=0, shape=2)
    floor, wall, obj = image[63, 2], image[2, 32], image[40, 32]  # a corner, the top, the middle
    for pixel, hue in [(floor, value), (wall, (value + 3) % 10), (obj, (value + 6) % 10)]:
        distance = abs(_hue(pixel) - HUES[hue])
        assert min(distance, 1 - distance) < 0.01


def test_scale_grows_the_object():
    def area(scale, shape):
        return (
            (_image(obj=5, scale=scale, shape=shape) != _image(obj=0, scale=scale, shape=shape))
            .any(axis=2)
            .sum()
        )

    for shape in range(4):
        areas = [area(scale, shape) for scale in range(8)]
        assert areas == sorted(areas) and areas[-1] > 1.8 * areas[0] > 200


def test_the_geometry_is_a_small_uint8_array_cached_atomically(tmp_path, monkeypatch):
    cache = geometry_cache()
    assert cache.dtype == np.uint8 and cache.nbytes < 6_000_000
    assert cache.astype(int).sum(axis=-1).max() <= 255  # the three surfaces share each pixel
    calls = []
    monkeypatch.setattr(shapes3d, "render_all", lambda: calls.append(1) or cache[:1, :1])
    path = tmp_path / "cache" / "geometry.npy"
    first, second = shapes3d.load_or_render(path), shapes3d.load_or_render(path)
    np.testing.assert_array_equal(first, second)
    assert calls == [1] and [p.name for p in path.parent.iterdir()] == ["geometry.npy"]
