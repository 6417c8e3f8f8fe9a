"""Data: the embedded digits split, and the MNIST IDX reader on files the tests write themselves."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from npoptim import data
from npoptim.data import IDXError, load_digits, load_mnist, read_idx, read_idx_images, read_idx_labels


def idx_bytes(array: np.ndarray, magic_low: int | None = None) -> bytes:
    """IDX encoding written from the format description: 0, 0, 0x08 (ubyte), ndim, big-endian sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim if magic_low is None else magic_low])
    return header + b"".join(struct.pack(">I", s) for s in array.shape) + array.tobytes()


def write(path: Path, payload: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 3, 2), dtype=np.uint8), np.arange(20, dtype=np.uint8) % 10


@pytest.mark.parametrize("gz", [False, True])
def test_round_trip_raw_and_gzip(tmp_path, tiny, gz):
    images, labels = tiny
    ipath = write(tmp_path / "im", idx_bytes(images), gz=gz)
    lpath = write(tmp_path / "lb", idx_bytes(labels), gz=gz)
    np.testing.assert_array_equal(read_idx_images(ipath), images)
    np.testing.assert_array_equal(read_idx_labels(lpath), labels)
    assert read_idx_labels(lpath).dtype == np.int64


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path, tiny):
    images, _ = tiny
    plain_named_gz = write(tmp_path / "a-images-idx3-ubyte.gz", idx_bytes(images))
    gz_named_plain = write(tmp_path / "b-images-idx3-ubyte", idx_bytes(images), gz=True)
    np.testing.assert_array_equal(read_idx(plain_named_gz), images)
    np.testing.assert_array_equal(read_idx(gz_named_plain), images)


def test_wrong_magic_names_file_and_numbers(tmp_path, tiny):
    _, labels = tiny
    path = write(tmp_path / "labels-as-images", idx_bytes(labels))
    with pytest.raises(IDXError, match=r"labels-as-images: wrong magic number 2049, expected 2051"):
        read_idx_images(path)
    junk = write(tmp_path / "junk.bin", b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(IDXError, match=r"junk\.bin: not an unsigned-byte IDX file"):
        read_idx_labels(junk)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data_is_reported(tmp_path, tiny, gz):
    images, _ = tiny
    path = write(tmp_path / "cut", idx_bytes(images)[:-7], gz=gz)
    with pytest.raises(IDXError, match=r"cut: truncated: header says \(20, 3, 2\) = 120 bytes of data, found 113"):
        read_idx_images(path)


def test_truncated_header_and_gzip_stream_and_trailing_bytes(tmp_path, tiny):
    images, _ = tiny
    with pytest.raises(IDXError, match=r"hdr: truncated header"):
        read_idx_images(write(tmp_path / "hdr", idx_bytes(images)[:9]))
    with pytest.raises(IDXError, match=r"tiny: truncated: 2 bytes"):
        read_idx(write(tmp_path / "tiny", b"\x00\x00"))
    compressed = gzip.compress(idx_bytes(images))
    with pytest.raises(IDXError, match=r"gzcut: corrupted or truncated gzip"):
        read_idx_images(write(tmp_path / "gzcut", compressed[: len(compressed) // 2]))
    with pytest.raises(IDXError, match=r"long: 3 unexpected bytes after"):
        read_idx_images(write(tmp_path / "long", idx_bytes(images) + b"abc"))


def test_label_out_of_range_and_missing_file(tmp_path):
    path = write(tmp_path / "lab", idx_bytes(np.array([1, 2, 11, 3])))
    with pytest.raises(IDXError, match=r"lab: label 11 at index 2 is not a class in \[0, 10\)"):
        read_idx_labels(path)
    with pytest.raises(IDXError, match=r"nothere: no such file"):
        read_idx(tmp_path / "nothere")


def _mnist_dir(root: Path, part: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> Path:
    root.mkdir(exist_ok=True)
    ext = ".gz" if gz else ""
    write(root / f"{part}-images-idx3-ubyte{ext}", idx_bytes(images), gz=gz)
    write(root / f"{part}-labels-idx1-ubyte{ext}", idx_bytes(labels), gz=gz)
    return root


def test_count_mismatch_names_both_files(tmp_path, tiny):
    images, labels = tiny
    root = _mnist_dir(tmp_path / "m", "t10k", images, labels[:-1])
    with pytest.raises(IDXError, match=r"t10k-images-idx3-ubyte.gz holds 20 images but .*t10k-labels-idx1-ubyte.gz "
                                       r"holds 19 labels"):
        load_mnist(root)


def test_load_mnist_splits_test_set_or_uses_both(tmp_path, tiny):
    images, labels = tiny
    only_test = load_mnist(_mnist_dir(tmp_path / "a", "t10k", images, labels), held_out=0.5)
    assert only_test.x_train.shape == (10, 6) and only_test.x_held_out.shape == (10, 6)
    assert sorted(np.bincount(only_test.y_held_out, minlength=10)) == [1] * 10  # stratified: one of each class
    assert only_test.x_train.min() >= 0 and only_test.x_train.max() <= 1
    both = _mnist_dir(tmp_path / "b", "train", images, labels, gz=False)
    _mnist_dir(both, "t10k", images[:4], labels[:4])
    ds = load_mnist(both)
    assert len(ds.y_train) == 20 and len(ds.y_held_out) == 4
    np.testing.assert_allclose(ds.x_held_out, images[:4].reshape(4, -1) / 255.0, rtol=1e-6)
    assert "held out" in ds.description


def test_load_mnist_directory_problems(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match=r"'.*absent' does not exist"):
        load_mnist(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        load_mnist(tmp_path / "empty")
    images, _ = tiny
    (tmp_path / "half").mkdir()
    write(tmp_path / "half" / "t10k-images-idx3-ubyte", idx_bytes(images))
    with pytest.raises(IDXError, match="not its partner t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path / "half")


def test_digits_split_is_stratified_fixed_and_scaled():
    from sklearn.datasets import load_digits as sk_digits

    a, b = load_digits(), load_digits()
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_held_out, b.y_held_out)
    assert a.x_train.shape == (1437, 64) and a.x_held_out.shape == (360, 64)
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    full = np.bincount(sk_digits().target)
    held = np.bincount(a.y_held_out, minlength=10)
    np.testing.assert_array_equal(np.bincount(a.y_train, minlength=10) + held, full)
    assert np.all(np.abs(held - 0.2 * full) <= 1)  # stratified: every class within one image of 20%
    other = load_digits(seed=1)
    assert not np.array_equal(other.y_held_out, a.y_held_out)




def test_real_mnist_test_set(mnist_dir):
    images = read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28)
    # Class counts of the MNIST test set, as published with the data set.
    np.testing.assert_array_equal(np.bincount(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    ds = data.load_mnist(mnist_dir)
    assert ds.x_train.shape == (8000, 784) and ds.x_held_out.shape == (2000, 784)
