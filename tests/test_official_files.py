"""The official Shapes3D and MPI3D files, on small files with the same keys and layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from untwine.data import load_dataset
from untwine.errors import UntwineError

SMALL_SHAPES3D = (2, 3, 2, 2, 2, 2)
SMALL_MPI3D = (2, 2, 1, 1, 1, 2, 3)


def _write_shapes3d(path, sizes=SMALL_SHAPES3D, shuffle=False):
    """An h5 with `images` and `labels` (the official values), chunked one image per chunk."""
    values = [np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10)]
    values += [np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15)]
    classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), axis=1)
    labels = np.stack([values[k][classes[:, k]] for k in range(6)], axis=1)
    if shuffle:
        labels = labels[::-1]
    images = np.random.default_rng(0).integers(0, 256, (len(labels), 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as file:
        file.create_dataset("images", data=images, chunks=(1, 64, 64, 3), compression="gzip")
        file.create_dataset("labels", data=labels)
    return images


def test_shapes3d_file_is_read_in_place_in_any_index_order(tmp_path):
    images = _write_shapes3d(tmp_path / "3dshapes.h5")
    dataset = load_dataset("shapes3d-official", path=str(tmp_path / "3dshapes.h5"))
    assert dataset.factor_sizes == SMALL_SHAPES3D and len(dataset) == 96
    indices = np.array([95, 3, 3, 40, 0, 17])  # unsorted, with a repeat
    np.testing.assert_array_equal(dataset.observations(indices), images[indices])
    factors = dataset.index_to_factors(np.array([95]))
    np.testing.assert_array_equal(factors, [[1, 2, 1, 1, 1, 1]])


def test_shapes3d_file_under_the_data_root_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("UNTWINE_DATA", str(tmp_path))
    _write_shapes3d(tmp_path / "3dshapes.h5")
    assert len(load_dataset("shapes3d-official")) == 96


def test_bad_shapes3d_files_give_one_clear_error(tmp_path):
    with pytest.raises(UntwineError, match=r"not found at .*3d-shapes.*data.path=FILE"):
        load_dataset("shapes3d-official", path=str(tmp_path / "missing.h5"))
    _write_shapes3d(tmp_path / "reversed.h5", shuffle=True)
    with pytest.raises(UntwineError, match="not a complete grid in C-order"):
        load_dataset("shapes3d-official", path=str(tmp_path / "reversed.h5"))
    with h5py.File(tmp_path / "nolabels.h5", "w") as file:
        file.create_dataset("images", data=np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(UntwineError, match="lacks the dataset 'labels'"):
        load_dataset("shapes3d-official", path=str(tmp_path / "nolabels.h5"))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(UntwineError, match=r"cannot read .* as HDF5"):
        load_dataset("shapes3d-official", path=str(tmp_path / "text.h5"))


def _mpi3d_images(sizes=SMALL_MPI3D):
    n = int(np.prod(sizes))
    return np.random.default_rng(1).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_mpi3d_npz_is_memory_mapped_in_place(tmp_path):
    images = _mpi3d_images()
    np.savez(tmp_path / "mpi3d.npz", images=images)
    dataset = load_dataset("mpi3d-official", path=str(tmp_path / "mpi3d.npz"), sizes=SMALL_MPI3D)
    assert isinstance(dataset._images, np.memmap) and len(dataset) == 24
    assert dataset.factor_names[0] == "object_color" and dataset.factor_sizes == SMALL_MPI3D
    indices = np.array([23, 0, 5, 5])
    np.testing.assert_array_equal(dataset.observations(indices), images[indices])
    assert not list((tmp_path / "data").glob("**/*.npy"))  # no copy made


def test_compressed_mpi3d_npz_is_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("UNTWINE_DATA", str(tmp_path / "root"))
    images = _mpi3d_images()
    np.savez_compressed(tmp_path / "mpi3d.npz", images=images)
    dataset = load_dataset("mpi3d-official", path=str(tmp_path / "mpi3d.npz"), sizes=SMALL_MPI3D)
    np.testing.assert_array_equal(dataset.observations(np.arange(24)), images)
    assert len(list((tmp_path / "root" / "cache").glob("*.npy"))) == 1


def test_bad_mpi3d_files_give_one_clear_error(tmp_path):
    with pytest.raises(UntwineError, match=r"not found at .*disentanglement_dataset"):
        load_dataset("mpi3d-official", path=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "odd.npz", images=_mpi3d_images())
    with pytest.raises(UntwineError, match=r"24 images, not a known MPI3D grid.*data.sizes"):
        load_dataset("mpi3d-official", path=str(tmp_path / "odd.npz"))
    with pytest.raises(UntwineError, match="product is the file's 24 images"):
        load_dataset("mpi3d-official", path=str(tmp_path / "odd.npz"), sizes=(2, 2, 2))
    np.savez(tmp_path / "other.npz", pictures=_mpi3d_images())
    with pytest.raises(UntwineError, match="has no array 'images'; it has pictures"):
        load_dataset("mpi3d-official", path=str(tmp_path / "other.npz"), sizes=SMALL_MPI3D)
