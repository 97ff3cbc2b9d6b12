"""Shapes3D: a ray-cast floor, back wall and object on the official grid.

The 480 geometries (scale x shape x orientation) are ray-cast once into per-pixel light
intensities of the three surfaces; a batch is coloured on the fly from the three hues. The
camera orbits the object (orientation), so the room's corner and the light on the object move
with it, and a sphere or an upright cylinder still shows its orientation.
"""

from __future__ import annotations

import colorsys
import functools
import os
from pathlib import Path

import numpy as np

from untwine.data.base import DATASETS, GroundTruthDataset, data_root

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
HUES = np.linspace(0.0, 0.9, 10)
SCALES = np.linspace(0.75, 1.25, 8)
SHAPES = ("cube", "cylinder", "sphere", "capsule")
ORIENTATIONS = np.linspace(-30.0, 30.0, 15)  # degrees of camera azimuth around the object

IMAGE_SIZE = 64
SUPERSAMPLE = 2  # rays per pixel side
SATURATION, VALUE = 0.75, 1.0
RENDER_VERSION = 1  # bump when the renderer changes, so old caches are not reused

SIZE = 0.6  # object half-size at scale 1, in room units
WALL_Z = -2.5
CAMERA_DISTANCE, CAMERA_HEIGHT, LOOK_AT_HEIGHT = 4.0, 1.8, 0.45
FIELD_OF_VIEW = np.radians(42.0)
LIGHT = np.array([-2.0, 4.0, 3.0])  # a point light, fixed in the room
AMBIENT = 0.3
SURFACES = ("floor", "wall", "object")


def hue_colours(saturation: float = SATURATION, value: float = VALUE) -> np.ndarray:
    """uint8 RGB (10, 3) of the official hues 0, 0.1, ..., 0.9."""
    rgb = [colorsys.hsv_to_rgb(h, saturation, value) for h in HUES]
    return np.round(np.array(rgb) * 255).astype(np.uint8)


def _camera_rays(azimuth_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Origin (3,) and unit directions (R, 3) of the supersampled pixel rays, rows going down."""
    azimuth = np.radians(azimuth_deg)
    origin = np.array(
        [CAMERA_DISTANCE * np.sin(azimuth), CAMERA_HEIGHT, CAMERA_DISTANCE * np.cos(azimuth)]
    )
    forward = np.array([0.0, LOOK_AT_HEIGHT, 0.0]) - origin
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    n = IMAGE_SIZE * SUPERSAMPLE
    offsets = ((np.arange(n) + 0.5) / n - 0.5) * 2 * np.tan(FIELD_OF_VIEW / 2)
    u, v = np.meshgrid(offsets, -offsets)  # v decreases down the image
    directions = forward + u[..., None] * right + v[..., None] * up
    directions = directions.reshape(-1, 3)
    return origin, directions / np.linalg.norm(directions, axis=1, keepdims=True)


def _hit_plane(o, d, axis: int, at: float) -> np.ndarray:
    """Distance to the plane x[axis] = at along each ray (inf where it is behind or parallel)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (at - o[axis]) / d[:, axis]
    return np.where(t > 1e-6, t, np.inf)


def _hit_sphere(o, d, centre, radius) -> tuple[np.ndarray, np.ndarray]:
    """Nearest distance to a sphere and the normal there."""
    oc = o - centre
    b = d @ oc
    disc = b**2 - (oc @ oc - radius**2)
    t = np.where(disc >= 0, -b - np.sqrt(np.maximum(disc, 0)), np.inf)
    t = np.where(t > 1e-6, t, np.inf)
    normal = (o + np.where(np.isfinite(t), t, 0)[:, None] * d - centre) / radius
    return t, normal


def _hit_box(o, d, low, high) -> tuple[np.ndarray, np.ndarray]:
    """Nearest distance to an axis-aligned box (slab method) and the normal of the face hit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (low - o) / d, (high - o) / d
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    near = np.nan_to_num(near, nan=-np.inf)
    far = np.nan_to_num(far, nan=np.inf)
    t_near, t_far = near.max(axis=1), far.min(axis=1)
    t = np.where((t_near <= t_far) & (t_near > 1e-6), t_near, np.inf)
    face = near.argmax(axis=1)
    normal = np.zeros_like(d)
    normal[np.arange(len(d)), face] = -np.sign(d[np.arange(len(d)), face])
    return t, normal


def _hit_cylinder(o, d, axis: int, centre, radius, half_length) -> tuple[np.ndarray, np.ndarray]:
    """Nearest distance to a capped cylinder along `axis` (0 = x, 1 = y) and its normal."""
    across = [i for i in range(3) if i != axis]
    oc = o - centre
    a = (d[:, across] ** 2).sum(axis=1)
    b = d[:, across] @ oc[across]
    c = oc[across] @ oc[across] - radius**2
    disc = b**2 - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
    along = oc[axis] + t_side * d[:, axis]
    t_side = np.where(
        (disc >= 0) & (t_side > 1e-6) & (np.abs(along) <= half_length), t_side, np.inf
    )
    normal_side = oc + np.where(np.isfinite(t_side), t_side, 0)[:, None] * d
    normal_side[:, axis] = 0
    normal_side /= radius
    t_cap = np.full(len(d), np.inf)
    normal_cap = np.zeros_like(d)
    for sign in (-1.0, 1.0):
        t = _hit_plane(oc, d, axis, sign * half_length)
        p = oc + np.where(np.isfinite(t), t, 0)[:, None] * d
        inside = (p[:, across] ** 2).sum(axis=1) <= radius**2
        t = np.where(inside, t, np.inf)
        closer = t < t_cap
        t_cap = np.where(closer, t, t_cap)
        normal_cap[closer, axis] = sign
    side_first = t_side <= t_cap
    return np.where(side_first, t_side, t_cap), np.where(
        side_first[:, None], normal_side, normal_cap
    )


def _hit_object(o, d, shape: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest distance to the object standing on the floor at the origin, and its normal."""
    r = SIZE * scale
    if shape == "cube":
        return _hit_box(o, d, np.array([-r, 0.0, -r]), np.array([r, 2 * r, r]))
    if shape == "cylinder":
        return _hit_cylinder(o, d, 1, np.array([0.0, r, 0.0]), r, r)
    if shape == "sphere":
        return _hit_sphere(o, d, np.array([0.0, r, 0.0]), r)
    # a capsule lying along x: a cylinder with a hemisphere at each end
    radius, half = 0.65 * r, 0.75 * r
    t, normal = _hit_cylinder(o, d, 0, np.array([0.0, radius, 0.0]), radius, half)
    for end in (-half, half):
        t_end, normal_end = _hit_sphere(o, d, np.array([end, radius, 0.0]), radius)
        closer = t_end < t
        t, normal = np.where(closer, t_end, t), np.where(closer[:, None], normal_end, normal)
    return t, normal


def _lambert(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Ambient plus diffuse light from the point light, in [0, 1]."""
    to_light = LIGHT - points
    to_light /= np.linalg.norm(to_light, axis=1, keepdims=True)
    diffuse = np.clip((normals * to_light).sum(axis=1), 0, 1)
    return AMBIENT + (1 - AMBIENT) * diffuse


def _contact_shadow(points: np.ndarray, scale: float) -> np.ndarray:
    """A soft shadow on the floor, cast away from the light: 1 outside it, darker inside."""
    r = SIZE * scale
    away = -LIGHT[[0, 2]] / np.linalg.norm(LIGHT[[0, 2]])
    centre = away * r * 0.8
    distance2 = ((points[:, [0, 2]] - centre) ** 2).sum(axis=1)
    return 1 - 0.5 * np.exp(-distance2 / (1.6 * r) ** 2)


def render_intensities(shape: str, scale: float, azimuth: float) -> np.ndarray:
    """Light on each surface per pixel, uint8 (H, W, 3) for floor, wall, object; sums to <= 255."""
    o, d = _camera_rays(azimuth)
    t_floor = _hit_plane(o, d, 1, 0.0)
    t_wall = _hit_plane(o, d, 2, WALL_Z)
    t_object, n_object = _hit_object(o, d, shape, scale)
    t_all = np.stack([t_floor, t_wall, t_object], axis=1)
    surface = t_all.argmin(axis=1)
    t = t_all.min(axis=1)
    points = o + np.where(np.isfinite(t), t, 0)[:, None] * d
    normals = np.where(
        (surface == 2)[:, None], n_object, np.where((surface == 0)[:, None], [0, 1, 0], [0, 0, 1])
    )
    light = _lambert(points, normals)
    light = np.where(surface == 0, light * _contact_shadow(points, scale), light)
    intensity = np.zeros((len(d), 3))
    intensity[np.arange(len(d)), surface] = light
    n = IMAGE_SIZE
    mean = intensity.reshape(n, SUPERSAMPLE, n, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.floor(mean * 255).astype(np.uint8)  # floor: the three never sum past 255


def render_all() -> np.ndarray:
    """Intensities of every geometry, uint8 (8 scales, 4 shapes, 15 orientations, H, W, 3)."""
    out = np.zeros(
        (len(SCALES), len(SHAPES), len(ORIENTATIONS), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8
    )
    for i, scale in enumerate(SCALES):
        for j, shape in enumerate(SHAPES):
            for k, azimuth in enumerate(ORIENTATIONS):
                out[i, j, k] = render_intensities(shape, scale, azimuth)
    return out


@functools.cache
def geometry_cache() -> np.ndarray:
    """The rendered intensities of every geometry, rendered once per data root."""
    return load_or_render(data_root() / "cache" / f"shapes3d-v{RENDER_VERSION}.npy")


def load_or_render(path: Path) -> np.ndarray:
    """The intensities from the uint8 cache at `path`, rendering and writing it atomically first."""
    if path.exists():
        return np.load(path)
    intensities = render_all()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, intensities)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data root only costs a re-render next time
    return intensities


@DATASETS.register("shapes3d")
class Shapes3D(GroundTruthDataset):
    """Procedural Shapes3D: 10 floor x 10 wall x 10 object hues x 8 scales x 4 shapes x 15 angles.

    A floor, a back wall and one object (cube, cylinder, sphere or capsule), ray-cast under a
    point light; 64x64 RGB, 480,000 images in the official index order. The hues are the
    official 0.0..0.9 (saturation 0.75). The geometry costs 5.9 MB (uint8, cached under the
    data root); colour is mixed in per batch, one small matmul per image. Pixel values differ
    from the official file.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(self) -> None:
        self._intensity = geometry_cache().reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 3)
        self._colours = hue_colours().astype(np.float32) / 255

    def observations(self, indices: np.ndarray) -> np.ndarray:
        factors = self.index_to_factors(indices)
        geometry = np.ravel_multi_index(tuple(factors[:, 3:].T), FACTOR_SIZES[3:])
        colours = self._colours[factors[:, :3]]  # (n, 3 surfaces, 3 rgb) in 0..1
        out = np.empty((len(factors), IMAGE_SIZE * IMAGE_SIZE, 3), np.uint8)
        # 16 images at a time: float buffers small enough to be reused, not page-faulted anew
        for start in range(0, len(factors), 16):
            part = slice(start, start + 16)
            light = self._intensity[geometry[part]].reshape(-1, IMAGE_SIZE * IMAGE_SIZE, 3)
            mixed = np.matmul(light.astype(np.float32), colours[part])  # <= 255, as light is
            mixed += 0.5  # round half up on the cast
            out[part] = mixed
        return out.reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 3)
