"""Data sets for the training experiment: scikit-learn's digits (embedded) and MNIST (IDX files).

Every loader returns a :class:`Dataset`: training and held-out arrays, images
flattened to rows of floats in [0, 1], labels as integers.

* :func:`load_digits` -- the 1,797 8x8 handwritten digits that ship inside
  scikit-learn (no download), pixel values 0..16 scaled by 1/16, split into
  training and held-out sets by a stratified split with a fixed seed.
* :func:`load_mnist` -- MNIST from its standard IDX files in a directory the
  user names (gzip-compressed or raw, detected by the gzip magic bytes
  ``1f 8b``, not by the file name).  With the training files present the
  training set is trained on and the 10,000-image test set is held out; with
  only the test files (``t10k-*``), the test set itself is split like digits.
* :func:`read_idx` -- the IDX reader.  The format (LeCun et al., "THE MNIST
  DATABASE of handwritten digits", file formats section) is a big-endian
  header: two zero bytes, a type code (``0x08`` = unsigned byte), the number
  of dimensions ``k``, then ``k`` 32-bit sizes, then the data.  Images have
  magic number 2051 (``00 00 08 03``), labels 2049 (``00 00 08 01``).  Every
  problem is reported as an :class:`IDXError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Dataset",
    "IDXError",
    "load_digits",
    "load_mnist",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "find_mnist_files",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
]

#: IDX magic number of an image file: unsigned bytes, 3 dimensions.
IMAGES_MAGIC = 2051
#: IDX magic number of a label file: unsigned bytes, 1 dimension.
LABELS_MAGIC = 2049
_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


class IDXError(ValueError):
    """An IDX file is missing, truncated, of the wrong kind or inconsistent; the message names it."""


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into training and held-out parts.

    ``x_*`` are ``float`` arrays of shape ``(n, features)`` with values in
    [0, 1]; ``y_*`` are ``int64`` labels in ``[0, n_classes)``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_held_out: np.ndarray
    y_held_out: np.ndarray
    n_classes: int
    #: One sentence: where the data came from and how it was split.
    description: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def summary(self) -> dict:
        """JSON-ready description (sizes, split) for results files."""
        return {
            "name": self.name,
            "n_train": int(len(self.y_train)),
            "n_held_out": int(len(self.y_held_out)),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "description": self.description,
        }


def _split(x: np.ndarray, y: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out!r}")
    return train_test_split(x, y, test_size=held_out, random_state=seed, stratify=y)


def load_digits(*, held_out: float = 0.2, seed: int = 0, dtype: type = np.float32) -> Dataset:
    """scikit-learn's 8x8 digits, scaled to [0, 1], stratified split (``held_out`` fraction, ``seed``).

    >>> data = load_digits()
    >>> data.x_train.shape, data.x_held_out.shape, float(data.x_train.max())
    ((1437, 64), (360, 64), 1.0)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(dtype)
    y = bunch.target.astype(np.int64)
    x_tr, x_ho, y_tr, y_ho = _split(x, y, held_out, seed)
    return Dataset(
        name="digits",
        x_train=x_tr,
        y_train=y_tr,
        x_held_out=x_ho,
        y_held_out=y_ho,
        n_classes=10,
        description=(
            f"scikit-learn's handwritten digits ({len(y)} images, 8x8, pixels scaled to [0, 1]), "
            f"stratified split: {len(y_tr)} training, {len(y_ho)} held out (fraction {held_out}, seed {seed})"
        ),
    )


# --- IDX -----------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise IDXError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise IDXError(f"{path}: corrupted or truncated gzip data ({exc})") from None


def read_idx(path: str | os.PathLike[str], *, magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (gzip or raw), as ``uint8``.

    ``magic`` (e.g. :data:`IMAGES_MAGIC`) is the header the file must start
    with.  The data must be exactly as long as the header's sizes say.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"{path}: truncated: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if raw[0] or raw[1] or raw[2] != _UBYTE or raw[3] == 0:
        raise IDXError(f"{path}: not an unsigned-byte IDX file (magic number {found}, header bytes {raw[:4].hex(' ')})")
    if magic is not None and found != magic:
        raise IDXError(f"{path}: wrong magic number {found}, expected {magic}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated header: {len(raw)} bytes, {ndim} dimensions need {header}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    found_len = len(raw) - header
    if found_len < expected:
        raise IDXError(f"{path}: truncated: header says {shape} = {expected} bytes of data, found {found_len}")
    if found_len > expected:
        raise IDXError(f"{path}: {found_len - expected} unexpected bytes after the {shape} data the header declares")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Images ``(n, rows, cols)`` as ``uint8`` from an IDX image file (magic 2051)."""
    images = read_idx(path, magic=IMAGES_MAGIC)
    if images.ndim != 3 or 0 in images.shape[1:]:
        raise IDXError(f"{path}: image file must have 3 dimensions (count, rows, cols) with rows, cols > 0; "
                       f"header says {images.shape}")
    return images


def read_idx_labels(path: str | os.PathLike[str], *, n_classes: int = 10) -> np.ndarray:
    """Labels ``(n,)`` as ``int64`` from an IDX label file (magic 2049), each checked to lie in ``[0, n_classes)``."""
    labels = read_idx(path, magic=LABELS_MAGIC)
    if labels.ndim != 1:
        raise IDXError(f"{path}: label file must have 1 dimension, header says {labels.shape}")
    if len(labels) and labels.max() >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise IDXError(f"{path}: label {labels[bad]} at index {bad} is not a class in [0, {n_classes})")
    return labels.astype(np.int64)


def _read_pair(images_path: Path, labels_path: Path, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise IDXError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "the counts must match"
        )
    return (images.reshape(len(images), -1) / 255.0).astype(dtype), labels


def find_mnist_files(directory: str | os.PathLike[str], part: str) -> tuple[Path, Path] | None:
    """``(images, labels)`` paths of ``part`` ("train" or "t10k") in ``directory``, or None if absent.

    Accepts the standard names with ``-`` or ``.`` before ``idx`` and with or
    without ``.gz``: ``train-images-idx3-ubyte.gz``, ``t10k-labels.idx1-ubyte``.
    Raises :class:`IDXError` if only one of the two files is there.
    """
    directory = Path(directory)

    def find(kind: str, idx: str) -> Path | None:
        for sep in ("-", "."):
            for ext in (".gz", ""):
                path = directory / f"{part}-{kind}{sep}{idx}-ubyte{ext}"
                if path.is_file():
                    return path
        return None

    images, labels = find("images", "idx3"), find("labels", "idx1")
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        missing = f"{part}-images-idx3-ubyte[.gz]" if images is None else f"{part}-labels-idx1-ubyte[.gz]"
        raise IDXError(f"{directory}: found {images or labels} but not its partner {missing}")
    return images, labels


def load_mnist(
    directory: str | os.PathLike[str], *, held_out: float = 0.2, seed: int = 0, dtype: type = np.float32
) -> Dataset:
    """MNIST from the IDX files in ``directory``, pixels scaled to [0, 1] and flattened to 784 columns.

    With ``train-*`` and ``t10k-*`` files: train on the training set, hold out
    the test set.  With only ``t10k-*``: a stratified split of the test set
    (``held_out`` fraction, ``seed``), as for digits.  With only ``train-*``:
    the same split of the training set.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory {str(directory)!r} does not exist or is not a directory")
    train, test = find_mnist_files(directory, "train"), find_mnist_files(directory, "t10k")
    if train and test:
        x_tr, y_tr = _read_pair(*train, dtype)
        x_ho, y_ho = _read_pair(*test, dtype)
        how = f"training set ({len(y_tr)} images) trained on, test set ({len(y_ho)} images) held out"
    elif train or test:
        part = "training" if train else "test"
        x, y = _read_pair(*(train or test), dtype)
        x_tr, x_ho, y_tr, y_ho = _split(x, y, held_out, seed)
        how = (f"only the {part} set ({len(y)} images) present, stratified split: {len(y_tr)} training, "
               f"{len(y_ho)} held out (fraction {held_out}, seed {seed})")
    else:
        raise FileNotFoundError(
            f"no MNIST IDX files in {str(directory)!r}; expected t10k-images-idx3-ubyte[.gz] and "
            "t10k-labels-idx1-ubyte[.gz] and/or the train-* pair"
        )
    return Dataset(
        name="mnist",
        x_train=x_tr,
        y_train=y_tr,
        x_held_out=x_ho,
        y_held_out=y_ho,
        n_classes=10,
        description=f"MNIST from {directory}: {how}",
    )
