"""The capstone's three mystery models, built reproducibly and verified (taught in 11_capstone).

Three small digits MLPs, ``mystery_a``, ``mystery_b`` and ``mystery_c``: the same
architecture (the course MLP, hidden layers (128, 64)), the same kind of training
data, good clean accuracy, and each with one weakness for a penetration test to
find: one carries a backdoor (an undisclosed patch trigger and target class), one
leaks the membership of its unusual training records, one is fragile to evasion.
Which is which is the capstone's question; this module does not say it in words.

- :func:`build` trains the three (seeded, through :func:`utils.training.fit`
  under the pinned numerics of :mod:`utils.course.numerics`), saves their
  weights as safetensors (:func:`utils.deployment.save_weights`) and checks
  each file's sha256 against ``datasets/mystery/MANIFEST.json``: the weights are
  built on first use, never committed, and the same bytes on every x86-64
  machine with the locked packages. A mismatch stops with an error that names
  the file and both hashes.
- :func:`load` gives one model (built and verified if needed), :func:`test_set`
  the held-out digits every model is scored on, :func:`member_split` the
  candidate records of a membership test (half of them in that model's training
  set), :func:`training_data` the (possibly poisoned) training set (for the
  tests and the instructor; a penetration tester does not get it).

The data of every model: a pool of 1,437 digits (the train and validation splits
of ``data.load("digits", seed=DATA_SEED)``), from which the model's split seed
(in the manifest) draws 1,200 ordinary training digits and 200 *unusual records*:
digits whose label in the owner's records differs from what they look like (as a
rare diagnosis does; Feldman 2020). A hundred of those are in the training set, a
hundred are not: the candidates of :func:`member_split`. Outliers are what a model
memorises, and memorised records are what membership inference finds (Carlini et
al. 2022).

Which recipe each name gets, and the backdoor's trigger and target, follow from a
fixed secret seed in this module through a hash, not from a readable literal; the
lab's checks compare salted hashes of answers (utils.lab_checks.lab11). It keeps
honest learners from reading the answer at a glance; it is no protection against
someone who runs this module's private functions.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils import data, training
from utils import validation as v
from utils.attacks import poisoning
from utils.models import build_model
from utils.paths import ROOT
from utils.privacy import membership as mi

#: The mystery models, in the order of the manifest.
NAMES = ("mystery_a", "mystery_b", "mystery_c")
#: The seed of ``data.load("digits", ...)`` behind every mystery model's data.
DATA_SEED = 1100
#: Each model's own draw of its training set and candidates from the pool.
SPLIT_SEEDS = {"mystery_a": 1101, "mystery_b": 1102, "mystery_c": 1103}
#: Ordinary training digits of each model.
N_ORDINARY = 1200
#: Unusual records of each model: half in its training set (members), half not.
N_UNUSUAL = 200
#: The architecture of all three: the course MLP.
ARCHITECTURE = {"model": "mlp", "hidden": [128, 64], "input_shape": [1, 8, 8], "n_classes": 10}
#: The manifest of the weights' sha256.
MANIFEST_PATH = ROOT / "datasets" / "mystery" / "MANIFEST.json"

_SECRET = b"\x8a\x1f\xd3K\x07\x9e\x02\xc4modelsec-capstone\x13\x7f"


class MysteryIntegrityError(data.DataIntegrityError):
    """A built mystery model's file does not match the sha256 pinned in its manifest
    (taught in 11_capstone)."""


# --------------------------------------------------------------------------- the secret


def _stream(purpose: str) -> np.random.Generator:
    digest = hashlib.sha256(_SECRET + purpose.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _recipes() -> dict[str, str]:
    """name -> recipe ("backdoor", "leak", "fragile"), drawn from the secret."""
    order = _stream("assignment").permutation(3)
    recipes = ("backdoor", "leak", "fragile")
    return {name: recipes[int(k)] for name, k in zip(NAMES, order)}


def _backdoor() -> tuple[poisoning.Trigger, int]:
    """The backdoor's trigger (a 3×3 checker at one of poisoning.POSITIONS) and target class."""
    rng = _stream("backdoor")
    position = poisoning.POSITIONS[int(rng.integers(len(poisoning.POSITIONS)))]
    target = int(rng.integers(ARCHITECTURE["n_classes"]))
    return poisoning.trigger_at(3, position), target


def _truth() -> dict:
    """Everything the checks verify (for tests/test_mystery.py and the lab's digests)."""
    trigger, target = _backdoor()
    recipes = _recipes()
    position = next(p for p in poisoning.POSITIONS if poisoning.trigger_at(3, p) == trigger)
    return {"recipes": recipes, "target": target, "position": position, "trigger": trigger}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _Split:
    X_train: np.ndarray
    y_train: np.ndarray
    X_unusual: np.ndarray
    y_unusual: np.ndarray
    members: np.ndarray


def _name(name: str, where: str) -> str:
    return v.choice(name, "name", where, NAMES)


def _pool() -> tuple[np.ndarray, np.ndarray, data.Dataset]:
    ds = data.load("digits", seed=DATA_SEED)
    return np.concatenate([ds.X_train, ds.X_val]), np.concatenate([ds.y_train, ds.y_val]), ds


def _split(name: str) -> _Split:
    X, y, ds = _pool()
    rng = np.random.default_rng(SPLIT_SEEDS[name])
    perm = rng.permutation(len(X))
    ordinary, unusual = perm[:N_ORDINARY], perm[N_ORDINARY:N_ORDINARY + N_UNUSUAL]
    y_unusual = ((y[unusual] + rng.integers(1, ds.n_classes, len(unusual))) % ds.n_classes).astype(np.int64)
    members = np.zeros(len(unusual), dtype=bool)
    members[:N_UNUSUAL // 2] = True
    X_train = np.concatenate([X[ordinary], X[unusual][members]])
    y_train = np.concatenate([y[ordinary], y_unusual[members]]).astype(np.int64)
    return _Split(X_train, y_train, X[unusual].copy(), y_unusual, members)


def test_set() -> tuple[np.ndarray, np.ndarray]:
    """The held-out digits (360) on which every mystery model is scored: never in any
    model's training set (taught in 11_capstone)."""
    _, _, ds = _pool()
    return ds.X_test.copy(), ds.y_test.copy()


def member_split(name: str) -> mi.MembershipSplit:
    """The candidate records of a membership test against ``name``: its 200 unusual records
    with the owner's labels, ``members`` marking the 100 that are in its training set, and the
    held-out digits as ``X_test, y_test`` (taught in 11_capstone)."""
    name = _name(name, "member_split")
    s = _split(name)
    X_test, y_test = test_set()
    return mi.MembershipSplit(s.X_unusual, s.y_unusual, s.members.copy(), ARCHITECTURE["n_classes"],
                              SPLIT_SEEDS[name], X_test, y_test)


def training_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The training set ``(X, y)`` the model was trained on, poison included where there was
    some (for the tests and instructors; taught in 11_capstone)."""
    name = _name(name, "training_data")
    s = _split(name)
    if _recipes()[name] != "backdoor":
        return s.X_train, s.y_train
    trigger, target = _backdoor()
    Xp, yp, _ = poisoning.poison_backdoor(s.X_train, s.y_train, trigger, target, _POISON_RATE,
                                          seed=SPLIT_SEEDS[name], n_classes=ARCHITECTURE["n_classes"])
    return Xp, yp


# --------------------------------------------------------------------------- recipes

_POISON_RATE = 0.06
_FLIP_EPS = 0.05
_FLIP_SHARE = 2  # one batch example in this many also gets a flipped twin


def _flip_hook(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append, for half of the batch, a one-step perturbation of size _FLIP_EPS toward a
    random other class, labelled with that class: the decision boundary is pulled to within
    _FLIP_EPS of the training digits."""
    k = max(1, len(yb) // _FLIP_SHARE)
    x, y = xb[:k], yb[:k]
    other = (y + torch.randint(1, ARCHITECTURE["n_classes"], y.shape)) % ARCHITECTURE["n_classes"]
    training_modes = [m for m in model.modules() if m.training]
    model.eval()
    try:
        x_req = x.clone().requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x_req), other), x_req)
    finally:
        for m in training_modes:
            m.training = True
    x_flip = (x - _FLIP_EPS * grad.sign()).clamp(0, 1).detach()
    return torch.cat([xb, x_flip]), torch.cat([yb, other])


def _config(recipe: str, seed: int) -> training.TrainConfig:
    if recipe == "leak":  # longer, no regularisation: memorises its unusual records
        return training.preset("mlp", epochs=60, seed=seed)
    if recipe == "fragile":
        return training.preset("mlp", epochs=40, weight_decay=3e-3, seed=seed)
    return training.preset("mlp", epochs=40, weight_decay=1e-2, seed=seed)


@contextlib.contextmanager
def _pinned_numerics():
    """One thread, oneDNN off and deterministic algorithms while building, as ``utils.setup`` sets them
    (the environment variables of utils.course.numerics must be set before torch loads), restored after."""
    from utils.course import numerics

    state = (torch.get_num_threads(), torch.backends.mkldnn.enabled, torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    torch.use_deterministic_algorithms(True)
    try:
        with numerics.one_thread():
            yield
    finally:
        torch.set_num_threads(state[0])
        torch.backends.mkldnn.enabled = state[1]
        torch.use_deterministic_algorithms(state[2])


def _train(name: str) -> nn.Module:
    recipe = _recipes()[name]
    X, y = training_data(name)
    config = _config(recipe, SPLIT_SEEDS[name])
    if recipe == "fragile":
        return training.fit(config, X, y, ARCHITECTURE["n_classes"], device="cpu", batch_hook=_flip_hook,
                            tag=f"capstone-{_FLIP_EPS}-{_FLIP_SHARE}")
    return training.fit(config, X, y, ARCHITECTURE["n_classes"], device="cpu")


# --------------------------------------------------------------------------- build, verify, load


def read_manifest(path: Path = MANIFEST_PATH) -> dict:
    """The mystery models' manifest: name, architecture, file, sha256 and the data split seeds
    of each (taught in 11_capstone)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MysteryIntegrityError(f"mystery manifest missing: {path}") from None
    except json.JSONDecodeError as e:
        raise MysteryIntegrityError(f"mystery manifest {path} is not valid JSON: {e}") from None


def default_dir() -> Path:
    """Where :func:`build` writes the weights by default: ``mystery/`` next to the model cache
    (``MODELSEC_CACHE`` or ``.cache/``), ignored by git (taught in 11_capstone)."""
    return training.cache_dir().parent / "mystery"


def new_model() -> nn.Module:
    """A fresh model of the mystery architecture, for loading weights into (taught in 11_capstone)."""
    return build_model(ARCHITECTURE["model"], tuple(ARCHITECTURE["input_shape"]), ARCHITECTURE["n_classes"],
                       hidden=tuple(ARCHITECTURE["hidden"]))


def verify(path: str | Path, name: str, manifest: dict | None = None) -> Path:
    """Check a mystery model's file against the sha256 of its manifest entry; raise
    :class:`MysteryIntegrityError` naming the file and both hashes (taught in 11_capstone)."""
    from utils.deployment import sha256_file

    name = _name(name, "verify")
    manifest = read_manifest() if manifest is None else manifest
    entry = {e["name"]: e for e in manifest.get("models", [])}.get(name)
    if entry is None:
        raise MysteryIntegrityError(f"{name!r} is not listed in {MANIFEST_PATH}")
    path = Path(path)
    if not path.is_file():
        raise MysteryIntegrityError(f"mystery model file missing: {path}")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise MysteryIntegrityError(
            f"mystery model file {path} failed its integrity check: expected sha256 {entry['sha256']} "
            f"(datasets/mystery/MANIFEST.json), actual {actual}. The build differs from the published one "
            f"(other package versions, no pinned numerics, or a changed file); do not audit it. Build in the "
            f"course kernel with the locked packages, or delete the file and build again.")
    return path


def build(out_dir: str | Path | None = None, *, check: bool = True) -> dict[str, Path]:
    """Build the three mystery models (or reuse files already built), save each as
    ``<name>.safetensors`` in ``out_dir`` (default :func:`default_dir`) and verify each
    against the manifest's sha256 (``check=False`` skips that, for writing the manifest).
    Returns ``{name: path}`` (taught in 11_capstone)."""
    from utils.deployment import save_weights

    out = Path(out_dir) if out_dir is not None else default_dir()
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest() if check else None
    paths = {}
    for name in NAMES:
        path = out / f"{name}.safetensors"
        if check and path.is_file():
            try:
                paths[name] = verify(path, name, manifest)
                continue
            except MysteryIntegrityError:
                path.unlink()  # a stale or broken build: rebuild it, then verify that
        tmp = out / f"{name}.{os.getpid()}.tmp.safetensors"
        with _pinned_numerics():
            model = _train(name)
        save_weights(model, tmp)
        tmp.replace(path)
        paths[name] = verify(path, name, manifest) if check else path
    return paths


def load(name: str, out_dir: str | Path | None = None) -> nn.Module:
    """One mystery model in eval mode, from its verified safetensors file (built on first use;
    taught in 11_capstone)."""
    from utils.deployment import load_weights

    name = _name(name, "load")
    path = build(out_dir)[name]
    return load_weights(path, new_model())


def load_all(out_dir: str | Path | None = None) -> dict[str, nn.Module]:
    """``{name: model}`` for the three mystery models (taught in 11_capstone)."""
    from utils.deployment import load_weights

    return {name: load_weights(path, new_model()) for name, path in build(out_dir).items()}


def manifest_entries(paths: dict[str, Path]) -> dict:
    """The manifest for built files: name, architecture, file, sha256 and data seeds of each,
    not their weakness (taught in 11_capstone; used to write datasets/mystery/MANIFEST.json)."""
    from utils.deployment import sha256_file

    return {
        "about": "The capstone's mystery models (11_capstone). The weights are not committed: "
                 "utils.audit.mystery.build() trains them on first use under the pinned numerics and "
                 "checks each file against the sha256 below.",
        "built_with": {"torch": torch.__version__},
        "models": [{"name": name, "architecture": ARCHITECTURE, "file": f"{name}.safetensors",
                    "sha256": sha256_file(paths[name]),
                    "data": {"dataset": "digits", "data_seed": DATA_SEED, "split_seed": SPLIT_SEEDS[name],
                             "ordinary_training_digits": N_ORDINARY, "unusual_records": N_UNUSUAL}}
                   for name in NAMES],
    }


if __name__ == "__main__":  # python -m utils.audit.mystery [out_dir]: build and print the manifest
    import sys

    built = build(sys.argv[1] if len(sys.argv) > 1 else None, check=False)
    print(json.dumps(manifest_entries(built), indent=1))
