"""The course's data sets, verified before use (taught in 00_orientation_and_threat_model).

A registry maps a name to a loader; :func:`load` returns train / validation /
test splits drawn by seed. Every file the course reads is listed with its
sha256, source and license in ``datasets/MANIFEST.json`` and verified on every
load: a changed byte stops the load with an error that names the file and the
expected and actual sha256 (supply-chain integrity is itself a lesson).

- ``digits``: scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes),
  images in [0, 1] with shape (N, 1, 8, 8). The default.
- ``moons``: a seeded synthetic 2-D set for decision-boundary pictures.
- ``breast_cancer``: a small tabular set (569 × 30, 2 classes), standardized.
- ``mnist`` / ``fashion_mnist``: optional, 28×28; fetched only by an explicit
  :func:`download` call, checked against pinned sha256 and parsed from IDX
  files without torchvision.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from utils import validation as v
from utils.paths import ROOT

DATASETS_DIR = ROOT / "datasets"
MANIFEST_PATH = DATASETS_DIR / "MANIFEST.json"


class DataIntegrityError(RuntimeError):
    """A data file does not match the sha256 pinned in the manifest (taught in 00_orientation_and_threat_model)."""


class UnknownDatasetError(KeyError):
    """A data-set name that is not in the registry (taught in 00_orientation_and_threat_model)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test splits of one data set.

    Images have shape (N, 1, H, W) with values in [0, 1]; tabular and 2-D
    data have shape (N, d). Labels are int64 class indices. Taught in
    00_orientation_and_threat_model.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    kind: str  # "image", "tabular" or "points"
    seed: int
    feature_names: tuple[str, ...] = field(default=())

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    def summary(self) -> str:
        """One line: name, sizes of the splits, input shape and classes (taught in 00_orientation_and_threat_model)."""
        return (f"{self.name}: train {len(self.y_train)}, val {len(self.y_val)}, "
                f"test {len(self.y_test)}; input {self.input_shape}; {self.n_classes} classes")


# --------------------------------------------------------------------------- integrity


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, as hex (taught in 00_orientation_and_threat_model)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path: Path = MANIFEST_PATH) -> dict:
    """The manifest of data files: sha256, source and license of each (taught in 00_orientation_and_threat_model)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataIntegrityError(f"data manifest missing: {path}") from None
    except json.JSONDecodeError as e:
        raise DataIntegrityError(f"data manifest {path} is not valid JSON: {e}") from None


def verify_file(path: Path, expected_sha256: str) -> Path:
    """Check a file against its pinned sha256; raise :class:`DataIntegrityError` if it differs
    (taught in 00_orientation_and_threat_model)."""
    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"data file missing: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise DataIntegrityError(
            f"data file {path} failed its integrity check: expected sha256 "
            f"{expected_sha256}, actual {actual}. The file was changed or corrupted; "
            f"nothing was loaded. Restore the original (e.g. `git checkout -- {path.name}` "
            f"in datasets/) or download it again."
        )
    return path


def _entry(section: str, name: str, manifest: dict | None = None) -> dict:
    manifest = read_manifest() if manifest is None else manifest
    entries = {e["name"]: e for e in manifest.get(section, [])}
    if name not in entries:
        raise DataIntegrityError(f"{name!r} is not listed in section {section!r} of {MANIFEST_PATH}")
    return entries[name]


def verified_path(name: str) -> Path:
    """The path of a manifest-listed file, after checking its sha256 (taught in 00_orientation_and_threat_model)."""
    entry = _entry("files", name)
    if entry.get("location") != "scikit-learn":
        return verify_file(DATASETS_DIR / entry["path"], entry["sha256"])
    import sklearn

    path = Path(sklearn.__file__).resolve().parent / entry["path"]
    try:
        return verify_file(path, entry["sha256"])
    except DataIntegrityError as e:
        # the file ships inside scikit-learn: its sha256 is that of one release's copy
        expected = entry.get("scikit-learn", "the version in requirements.lock")
        raise DataIntegrityError(
            f"{e} This file ships inside scikit-learn: the manifest pins the copy of scikit-learn "
            f"{expected}, and scikit-learn {sklearn.__version__} is installed. Install the locked "
            f"versions (`make venv`, or `pip install -r requirements.lock`).") from None


# --------------------------------------------------------------------------- splitting


def split_indices(y: np.ndarray, seed: int, val_size: float = 0.2,
                  test_size: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / validation / test indices, the same for the same seed
    (taught in 00_orientation_and_threat_model)."""
    from sklearn.model_selection import train_test_split

    where = "split_indices"
    seed = v.integer(seed, "seed", where, 0, 2**32 - 1)
    val_size = v.probability(val_size, "val_size", where)
    test_size = v.probability(test_size, "test_size", where)
    if val_size + test_size >= 1:
        v.fail(where, f"val_size = {val_size:g} and test_size = {test_size:g} add up to {val_size + test_size:g}",
               "val_size and test_size must add up to less than 1")
    y = v.labels(y, where)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size),
                                  stratify=y[rest], random_state=seed)
    return np.sort(train), np.sort(val), np.sort(test)


def _make(name: str, X: np.ndarray, y: np.ndarray, classes, kind: str, seed: int,
          val_size: float, test_size: float, feature_names=(), standardize: bool = False) -> Dataset:
    tr, va, te = split_indices(y, seed, val_size, test_size)
    X = X.astype(np.float32)
    if standardize:
        mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-8
        X = ((X - mu) / sd).astype(np.float32)
    y = y.astype(np.int64)
    return Dataset(name, X[tr], y[tr], X[va], y[va], X[te], y[te], tuple(classes), kind, seed,
                   tuple(feature_names))


# --------------------------------------------------------------------------- loaders


def _load_digits(seed: int, val_size: float, test_size: float) -> Dataset:
    verified_path("digits")  # the file scikit-learn reads, checked before it reads it
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0)[:, None, :, :]
    return _make("digits", X, d.target, [str(i) for i in range(10)], "image", seed,
                 val_size, test_size)


MOONS_NOISE = 0.25  # standard deviation of the Gaussian noise of the moons points


def _load_moons(seed: int, val_size: float, test_size: float, n_samples: int = 600,
                noise: float = MOONS_NOISE) -> Dataset:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return _make("moons", X, y, ["0", "1"], "points", seed, val_size, test_size, ("x1", "x2"))


def moons_sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fresh points ``(X, y)`` of the distribution behind ``load("moons", seed)``.

    The moons are synthetic, so a test set can be as large as a claim needs: the
    split's 120 test points make one point worth 0.83 accuracy points, too coarse to
    compare attacks. The points come from their own random stream (derived from
    ``seed``), independent of the split's 600 points; the same ``n`` and ``seed``
    give the same points (taught in 01_data_poisoning).
    """
    where = "moons_sample"
    n = v.integer(n, "n", where, 2, 1_000_000)
    seed = v.integer(seed, "seed", where, 0, 2**32 - 1)
    from sklearn.datasets import make_moons

    stream = int(np.random.SeedSequence([seed, 0x6D6F6F6E]).generate_state(1)[0])
    X, y = make_moons(n_samples=n, noise=MOONS_NOISE, random_state=stream)
    return X.astype(np.float32), y.astype(np.int64)


def _load_breast_cancer(seed: int, val_size: float, test_size: float) -> Dataset:
    import csv

    path = verified_path("breast_cancer.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    classes = ["malignant", "benign"]
    X = np.array([[float(v) for v in r[:-1]] for r in body])
    y = np.array([classes.index(r[-1]) for r in body])
    return _make("breast_cancer", X, y, classes, "tabular", seed, val_size, test_size,
                 header[:-1], standardize=True)


def _load_idx_set(name: str, seed: int, val_size: float, test_size: float) -> Dataset:
    info = download_info(name)
    folder = download_dir(name)
    arrays = {}
    for part, (fname, sha) in info["files"].items():
        path = folder / fname
        if not path.exists():
            raise FileNotFoundError(
                f"{name} is an optional download and is not on this machine ({path} missing). "
                f"Fetch it once with utils.data.download({name!r}) (needs the network)."
            )
        arrays[part] = read_idx(verify_file(path, sha))
    X = np.concatenate([arrays["train_images"], arrays["test_images"]]) / 255.0
    y = np.concatenate([arrays["train_labels"], arrays["test_labels"]])
    return _make(name, X[:, None, :, :], y, info["classes"], "image", seed, val_size, test_size)


LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": _load_digits,
    "moons": _load_moons,
    "breast_cancer": _load_breast_cancer,
    "mnist": lambda s, v, t: _load_idx_set("mnist", s, v, t),
    "fashion_mnist": lambda s, v, t: _load_idx_set("fashion_mnist", s, v, t),
}


def available() -> list[str]:
    """Names of the data sets in the registry (taught in 00_orientation_and_threat_model)."""
    return sorted(LOADERS)


def load(name: str = "digits", seed: int = 0, val_size: float = 0.2,
         test_size: float = 0.2) -> Dataset:
    """Load a data set by name, verified and split by ``seed`` (taught in 00_orientation_and_threat_model).

    Raises:
        UnknownDatasetError: the name is not in the registry (the message lists those that are).
        DataIntegrityError: a file does not match its pinned sha256.
    """
    if name not in LOADERS:
        raise UnknownDatasetError(f"unknown data set {name!r}; known data sets: {', '.join(available())}")
    where = "load"
    seed = v.integer(seed, "seed", where, 0, 2**32 - 1)
    val_size = v.probability(val_size, "val_size", where)
    test_size = v.probability(test_size, "test_size", where)
    return LOADERS[name](seed, val_size, test_size)


# --------------------------------------------------------------------------- IDX and downloads

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes) -> np.ndarray:
    """Parse the bytes of an IDX file (the MNIST format) into an array.

    The header is two zero bytes, a type code, the number of dimensions and
    one big-endian uint32 per dimension; the values follow, big-endian
    (taught in 00_orientation_and_threat_model).
    """
    where = "parse_idx"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        v.fail(where, f"data is a {type(data).__name__}", "data must be the bytes of an IDX file")
    data = bytes(data)
    if len(data) < 4:
        v.fail(where, f"not an IDX file: {len(data)} bytes", "an IDX file's header alone needs 4")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        v.fail(where, f"not an IDX file: magic bytes {data[:4].hex()}",
               f"an IDX file starts with 0000 then a type code in {[hex(c) for c in _IDX_DTYPES]}")
    if ndim == 0:
        v.fail(where, "the IDX file declares 0 dimensions", "an IDX file has at least one dimension")
    head = 4 + 4 * ndim
    if len(data) < head:
        v.fail(where, f"IDX header truncated: {len(data)} bytes", f"{ndim} dimensions need {head} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:head])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - head != expected:
        v.fail(where, f"IDX body has {len(data) - head} bytes", f"shape {shape} of {dtype} needs {expected}")
    arr = np.frombuffer(data, dtype=dtype, offset=head).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed when its name ends in ``.gz`` (taught in 00_orientation_and_threat_model)."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return parse_idx(raw)
    except v.ValidationError as e:
        v.fail("read_idx", f"{path}: {e.wrong}", e.allowed)


def download_dir(name: str) -> Path:
    """Where optional downloads are kept (ignored by git) (taught in 00_orientation_and_threat_model)."""
    return Path(os.environ.get("MODELSEC_DATA", DATASETS_DIR / "downloads")) / name


def download_info(name: str) -> dict:
    """The manifest entry of an optional download: mirrors, files and their sha256
    (taught in 00_orientation_and_threat_model)."""
    table = {e["name"]: e for e in read_manifest().get("downloads", [])}
    if name not in table:
        raise UnknownDatasetError(f"{name!r} is not a downloadable data set; "
                                  f"downloadable: {', '.join(sorted(table))}")
    return table[name]


def download(name: str, fetch: Callable[[str], bytes] | None = None) -> Path:
    """Fetch an optional data set (``mnist`` or ``fashion_mnist``) and verify it.

    Each file is checked against the sha256 pinned in the manifest before it
    is written; a mismatch raises :class:`DataIntegrityError` and writes nothing.
    ``fetch`` (url -> bytes) can be replaced, e.g. in tests. Taught in
    00_orientation_and_threat_model.
    """
    info = download_info(name)
    fetch = fetch or (lambda url: urllib.request.urlopen(url, timeout=60).read())
    folder = download_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    for fname, sha in info["files"].values():
        target = folder / fname
        if target.exists() and sha256_file(target) == sha:
            continue
        errors = []
        for mirror in info["mirrors"]:
            url = mirror.rstrip("/") + "/" + fname
            try:
                payload = fetch(url)
            except Exception as e:  # try the next mirror
                errors.append(f"{url}: {e}")
                continue
            actual = hashlib.sha256(payload).hexdigest()
            if actual != sha:
                errors.append(f"{url}: expected sha256 {sha}, actual {actual}")
                continue
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(payload)
            tmp.replace(target)
            break
        else:
            raise DataIntegrityError(f"could not get a verified copy of {fname} for {name}:\n  "
                                     + "\n  ".join(errors))
    return folder
