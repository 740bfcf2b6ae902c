"""utils.data: registry, splits, sha256 verification, IDX parsing, optional downloads."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import struct

import numpy as np
import pytest

from utils import data


def test_digits_splits_are_seeded_stratified_and_in_range():
    a, b, c = data.load("digits", seed=0), data.load("digits", seed=0), data.load("digits", seed=1)
    assert a.X_train.shape == (1077, 1, 8, 8) and len(a.y_val) == 360 and len(a.y_test) == 360
    assert a.X_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert 0.0 <= a.X_train.min() and a.X_train.max() <= 1.0 and a.X_train.max() == 1.0
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.y_test, c.y_test)
    # stratified: every class present in every split, in similar proportions
    for y in (a.y_train, a.y_val, a.y_test):
        counts = np.bincount(y, minlength=10)
        assert counts.min() > 0.8 * counts.mean()
    # no example in two splits
    total = len(a.y_train) + len(a.y_val) + len(a.y_test)
    assert total == 1797
    assert a.n_classes == 10 and a.kind == "image" and "digits" in a.summary()


def test_moons_and_tabular():
    m = data.load("moons", seed=0)
    assert m.X_train.shape[1] == 2 and m.n_classes == 2 and m.kind == "points"
    t = data.load("breast_cancer", seed=0)
    assert t.X_train.shape[1] == 30 and t.classes == ("malignant", "benign")
    assert len(t.feature_names) == 30
    assert abs(float(t.X_train.mean())) < 0.05  # standardized on the training split


def test_moons_sample_is_fresh_seeded_and_from_the_same_distribution():
    X, y = data.moons_sample(4000, seed=0)
    assert X.shape == (4000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [2000, 2000]
    X2, y2 = data.moons_sample(4000, seed=0)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.array_equal(X, data.moons_sample(4000, seed=1)[0])
    m = data.load("moons", seed=0)
    split = np.concatenate([m.X_train, m.X_val, m.X_test])
    # independent of the split's points: none of them is drawn again
    assert not (np.abs(split[:, None, :] - X[None, :200, :]).sum(-1) < 1e-6).any()
    # the same distribution: per-class means agree with the split's within sampling error
    y_split = np.concatenate([m.y_train, m.y_val, m.y_test])
    for c in (0, 1):
        assert np.abs(X[y == c].mean(0) - split[y_split == c].mean(0)).max() < 0.1


@pytest.mark.parametrize("n, seed, match", [(1, 0, "n = 1"), (10, -1, "seed = -1"), (2.5, 0, "n = 2.5")])
def test_moons_sample_refuses_bad_arguments(n, seed, match):
    with pytest.raises(ValueError, match=match):
        data.moons_sample(n, seed=seed)


def test_unknown_name_lists_known_ones():
    with pytest.raises(data.UnknownDatasetError) as err:
        data.load("cifar")
    msg = str(err.value)
    assert "'cifar'" in msg and all(n in msg for n in ("digits", "moons", "breast_cancer", "mnist"))


def test_every_manifest_file_verifies_and_has_provenance():
    manifest = data.read_manifest()
    for entry in manifest["files"]:
        assert data.verified_path(entry["name"]).is_file()
        assert entry["source"] and entry["license"] and len(entry["sha256"]) == 64
    for entry in manifest["downloads"]:
        assert entry["source"] and entry["license"] and entry["mirrors"]
        assert all(len(sha) == 64 for _, sha in entry["files"].values())


def test_changed_byte_is_caught_with_both_hashes(tmp_path, monkeypatch):
    copy = tmp_path / "datasets"
    shutil.copytree(data.DATASETS_DIR, copy, ignore=shutil.ignore_patterns("downloads"))
    target = copy / "breast_cancer.csv"
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0x01
    target.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "DATASETS_DIR", copy)
    expected = [e for e in data.read_manifest()["files"] if e["name"] == "breast_cancer.csv"][0]["sha256"]
    actual = hashlib.sha256(bytes(raw)).hexdigest()
    with pytest.raises(data.DataIntegrityError) as err:
        data.load("breast_cancer")
    msg = str(err.value)
    assert "breast_cancer.csv" in msg and expected in msg and actual in msg


def test_digits_error_names_the_scikit_learn_version_it_expects(tmp_path, monkeypatch):
    import sklearn

    manifest = data.read_manifest()
    entry = next(e for e in manifest["files"] if e["name"] == "digits")
    entry["sha256"] = "0" * 64  # as if another scikit-learn release shipped another file
    fake = tmp_path / "MANIFEST.json"
    fake.write_text(json.dumps(manifest))
    monkeypatch.setattr(data, "MANIFEST_PATH", fake)
    monkeypatch.setattr(data, "read_manifest", lambda path=fake: json.loads(fake.read_text()))
    with pytest.raises(data.DataIntegrityError) as err:
        data.load("digits")
    msg = str(err.value)
    assert f"scikit-learn {entry['scikit-learn']}" in msg and f"scikit-learn {sklearn.__version__} is installed" in msg
    assert "requirements.lock" in msg


def test_digits_manifest_pins_the_locked_scikit_learn():
    entry = next(e for e in data.read_manifest()["files"] if e["name"] == "digits")
    locked = [l for l in (data.ROOT / "requirements.lock").read_text().splitlines()
              if l.startswith("scikit-learn==")]
    assert locked == [f"scikit-learn=={entry['scikit-learn']}"]


def test_missing_file_and_bad_manifest(tmp_path):
    with pytest.raises(data.DataIntegrityError, match="missing"):
        data.verify_file(tmp_path / "nope.csv", "0" * 64)
    bad = tmp_path / "MANIFEST.json"
    bad.write_text("{not json")
    with pytest.raises(data.DataIntegrityError, match="not valid JSON"):
        data.read_manifest(bad)


def test_split_sizes_are_checked():
    with pytest.raises(ValueError, match="split_indices: val_size = 0.6 and test_size = 0.5 add up to 1.1; "
                                         "val_size and test_size must add up to less than 1"):
        data.split_indices(np.zeros(10, dtype=int), 0, val_size=0.6, test_size=0.5)
    with pytest.raises(ValueError, match=r"split_indices: test_size = 0 is out of range; test_size must be a number in \(0, 1\)"):
        data.split_indices(np.zeros(10, dtype=int), 0, test_size=0)
    with pytest.raises(ValueError, match="split_indices: labels have dtype float64"):
        data.split_indices(np.zeros(10), 0)


def test_load_checks_its_parameters():
    with pytest.raises(ValueError, match="load: seed = -1 is out of range"):
        data.load("digits", seed=-1)
    with pytest.raises(ValueError, match="load: seed = 1.5 is not an integer"):
        data.load("digits", seed=1.5)
    with pytest.raises(ValueError, match=r"load: val_size = 1.2 is out of range; val_size must be a number in \(0, 1\)"):
        data.load("digits", val_size=1.2)


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("dtype,code", [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D)])
def test_idx_round_trip(dtype, code):
    arr = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype) if dtype != np.uint8 else \
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = data.parse_idx(idx_bytes(arr, code))
    assert out.shape == (2, 3, 4) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_idx_errors_are_clear():
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    good = idx_bytes(arr, 0x08)
    with pytest.raises(ValueError, match="parse_idx: not an IDX file: magic bytes 01000802; an IDX file starts with 0000"):
        data.parse_idx(b"\x01\x00" + good[2:])
    with pytest.raises(ValueError, match="body has 5 bytes"):
        data.parse_idx(good[:-1])
    with pytest.raises(ValueError, match="truncated"):
        data.parse_idx(good[:6])
    with pytest.raises(ValueError, match="header alone"):
        data.parse_idx(b"\x00")


def test_read_idx_gzip(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    p = tmp_path / "labels-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(idx_bytes(arr, 0x08)))
    np.testing.assert_array_equal(data.read_idx(p), arr)
    bad = tmp_path / "broken-idx1-ubyte"
    bad.write_bytes(b"\x00")
    with pytest.raises(ValueError, match=r"read_idx: .*broken-idx1-ubyte: not an IDX file: 1 bytes; an IDX file's header alone needs 4"):
        data.read_idx(bad)


def fake_mnist(tmp_path, monkeypatch):
    """A tiny IDX data set served by a fake fetch, with its hashes in a fake manifest."""
    rng = np.random.default_rng(0)
    parts = {"train_images": rng.integers(0, 256, (40, 4, 4), dtype=np.uint8),
             "train_labels": np.tile(np.arange(10, dtype=np.uint8), 4),
             "test_images": rng.integers(0, 256, (20, 4, 4), dtype=np.uint8),
             "test_labels": np.tile(np.arange(10, dtype=np.uint8), 2)}
    blobs, files = {}, {}
    for part, arr in parts.items():
        name = f"{part}.gz"
        blob = gzip.compress(idx_bytes(arr, 0x08))
        blobs[f"https://mirror.example/{name}"] = blob
        files[part] = [name, hashlib.sha256(blob).hexdigest()]
    manifest = data.read_manifest()
    manifest["downloads"] = [{"name": "mnist", "mirrors": ["https://mirror.example"], "files": files,
                              "classes": [str(i) for i in range(10)]}]
    mpath = tmp_path / "MANIFEST.json"
    mpath.write_text(json.dumps(manifest))
    monkeypatch.setattr(data, "read_manifest", lambda path=mpath: json.loads(mpath.read_text()))
    monkeypatch.setenv("MODELSEC_DATA", str(tmp_path / "downloads"))
    return blobs


def test_download_verifies_then_loads(tmp_path, monkeypatch):
    blobs = fake_mnist(tmp_path, monkeypatch)
    with pytest.raises(FileNotFoundError, match="utils.data.download"):
        data.load("mnist")
    calls = []
    folder = data.download("mnist", fetch=lambda url: calls.append(url) or blobs[url])
    assert len(calls) == 4 and len(list(folder.iterdir())) == 4
    ds = data.load("mnist", seed=0, val_size=0.2, test_size=0.2)
    assert ds.X_train.shape[1:] == (1, 4, 4) and ds.X_train.max() <= 1.0
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 60
    data.download("mnist", fetch=lambda url: pytest.fail("already verified files are not fetched again"))


def test_download_rejects_a_tampered_payload_and_writes_nothing(tmp_path, monkeypatch):
    blobs = fake_mnist(tmp_path, monkeypatch)
    tampered = {u: b[:-1] + bytes([b[-1] ^ 1]) for u, b in blobs.items()}
    with pytest.raises(data.DataIntegrityError, match="expected sha256"):
        data.download("mnist", fetch=lambda url: tampered[url])
    assert not any((tmp_path / "downloads" / "mnist").iterdir())


def test_a_tampered_download_on_disk_stops_the_load(tmp_path, monkeypatch):
    blobs = fake_mnist(tmp_path, monkeypatch)
    folder = data.download("mnist", fetch=lambda url: blobs[url])
    f = folder / "train_labels.gz"
    f.write_bytes(f.read_bytes() + b"\x00")
    with pytest.raises(data.DataIntegrityError, match="train_labels.gz"):
        data.load("mnist")


def test_unknown_download():
    with pytest.raises(data.UnknownDatasetError, match="downloadable"):
        data.download("imagenet")
