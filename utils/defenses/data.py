"""Defenses against poisoned training data (taught in 03_data_defenses).

Four families of checks, from the cheapest to the most specific:

- **Validation before training** (:func:`validate`): schema, value ranges,
  exact and near duplicates, class balance against a trusted reference. It
  returns a :class:`ValidationReport`, a list of :class:`Finding` (check name,
  status, details, offending indices) that prints as a readable table.
- **Anomaly detection** on inputs or embeddings (:func:`isolation_forest`).
- **Label consistency** (:func:`label_issues`): out-of-fold predicted
  probabilities fed to cleanlab's confident learning, or the share of k nearest
  neighbours that carry another label (:func:`knn_label_disagreement`).
- **Representation-based backdoor detection** on a model's hidden activations
  (:func:`utils.models.hidden_activations`): spectral signatures (Tran et al., 2018,
  :func:`spectral_signatures`) and activation clustering (Chen et al., 2018,
  :func:`activation_clustering`).

Each detector returns a :class:`Detection` (a boolean mask of flagged
examples, optional suspicion scores); :func:`utils.metrics.detection_metrics`
scores it against the known poisoned indices and :func:`retrain_without`
retrains on what is left. Every function returns new arrays and never modifies
its inputs; bad input (inputs and labels of different lengths, wrong shapes,
empty data, out-of-range rates and thresholds) raises the
:class:`utils.validation.ValidationError` (a ``ValueError``) that says where,
what was wrong and what is allowed. scikit-learn and NumPy's BLAS run on one
thread inside these functions (:func:`utils.course.numerics.one_thread`), so
the same data gives the same flags on every machine.

The private ``_finding_*`` functions are the lesson's *data checks* (each
returns a :class:`Finding` about the training set); checks of the *arguments*
go through :mod:`utils.validation`. The threshold panel of the lesson is
:func:`utils.widgets.threshold_panel`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from utils import metrics
from utils import validation as v
from utils.course.numerics import one_thread

STATUSES = ("pass", "warn", "fail", "skip")
_MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}


def _features_and_labels(features: Any, y: Any, where: str, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """(N, d) float64 features and one int64 class index per row, both through utils.validation."""
    F = v.features(features, where, name=name)
    return F, v.labels(y, where, n=len(F))


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Finding:
    """The outcome of one data check of :func:`validate` (taught in 03_data_defenses).

    ``status`` is ``"pass"``, ``"warn"``, ``"fail"`` or ``"skip"``; ``indices``
    lists the examples (or, for class balance, the classes) that triggered it.
    """

    check: str
    status: str
    details: str
    indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        v.choice(self.status, "status", "Finding", STATUSES)

    def __str__(self) -> str:
        return f"{_MARK[self.status]}  {self.check:<16} {self.details}"


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate` found: one :class:`Finding` per check, printable as a table
    (taught in 03_data_defenses)."""

    findings: tuple[Finding, ...]
    n_examples: int

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return not self.failures

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "warn"]

    def __getitem__(self, check: str) -> Finding:
        for f in self.findings:
            if f.check == check:
                return f
        raise KeyError(f"no check named {check!r}; checks: {[f.check for f in self.findings]}")

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __str__(self) -> str:
        n_pass = sum(f.status == "pass" for f in self.findings)
        head = (f"Data validation of {self.n_examples} examples: {n_pass} of {len(self.findings)} checks "
                f"passed, {len(self.warnings)} warning(s), {len(self.failures)} failure(s)")
        return "\n".join([head] + [f"  {f}" for f in self.findings])

    __repr__ = __str__


def _list(items: Sequence[Any], limit: int = 4) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def _finding_schema(X: np.ndarray, y: np.ndarray, n_classes: int, input_shape) -> Finding:
    problems = []
    shape = tuple(X.shape[1:])
    if input_shape is not None and shape != tuple(input_shape):
        problems.append(f"inputs have shape {shape}, expected {tuple(input_shape)}")
    if not np.issubdtype(X.dtype, np.floating):
        problems.append(f"inputs have dtype {X.dtype}, expected a float type")
    bad_labels: list[int] = []
    if not np.issubdtype(y.dtype, np.integer):
        problems.append(f"labels have dtype {y.dtype}, expected integers")
    else:
        bad_labels = np.flatnonzero((y < 0) | (y >= n_classes)).tolist()
        if bad_labels:
            problems.append(f"{len(bad_labels)} label(s) outside [0, {n_classes - 1}] at indices "
                            f"{_list(bad_labels)}")
    if problems:
        return Finding("schema", "fail", "; ".join(problems), tuple(bad_labels))
    return Finding("schema", "pass", f"{len(X)} inputs of shape {shape} ({X.dtype}), "
                   f"labels {y.dtype} in [0, {n_classes - 1}]")


def _finding_values(F: np.ndarray, value_range: tuple[float, float] | None) -> Finding:
    finite = np.isfinite(F)
    nonfinite = np.flatnonzero(~finite.all(1)).tolist()
    problems = []
    if nonfinite:
        problems.append(f"{len(nonfinite)} example(s) with NaN or infinite values at {_list(nonfinite)}")
    outside: list[int] = []
    if value_range is not None:
        lo, hi = value_range
        with np.errstate(invalid="ignore"):
            out = finite & ((F < lo) | (F > hi))
        outside = np.flatnonzero(out.any(1)).tolist()
        if outside:
            vals = F[finite]
            problems.append(f"{len(outside)} example(s) with values outside [{lo:g}, {hi:g}] "
                            f"(min {vals.min():.3g}, max {vals.max():.3g}) at {_list(outside)}")
    if problems:
        return Finding("value range", "fail", "; ".join(problems), tuple(sorted(set(nonfinite + outside))))
    where = f"in [{value_range[0]:g}, {value_range[1]:g}]" if value_range is not None else "(no range given)"
    return Finding("value range", "pass", f"all values finite and {where}")


def _finding_duplicates(F: np.ndarray, y: np.ndarray) -> Finding:
    _, first, inverse, counts = np.unique(F, axis=0, return_index=True, return_inverse=True,
                                          return_counts=True)
    inverse = inverse.reshape(-1)
    dup_groups = np.flatnonzero(counts > 1)
    if len(dup_groups) == 0:
        return Finding("duplicates", "pass", "no exact duplicate inputs")
    members = [np.flatnonzero(inverse == g) for g in dup_groups]
    conflicting = [m for m in members if len(set(y[m].tolist())) > 1]
    extra = sorted(int(i) for m in members for i in m if i != m.min())
    if conflicting:
        idx = sorted(int(i) for m in conflicting for i in m)
        pairs = [tuple(int(i) for i in m) for m in conflicting]
        return Finding("duplicates", "fail",
                       f"{len(conflicting)} group(s) of identical inputs with different labels: "
                       f"{_list(pairs)}", tuple(idx))
    return Finding("duplicates", "warn", f"{len(extra)} exact duplicate(s) of earlier examples "
                   f"(same labels) at {_list(extra)}", tuple(extra))


def _finding_near_duplicates(F: np.ndarray, y: np.ndarray, distance: float) -> Finding:
    from sklearn.neighbors import NearestNeighbors

    finite_rows = np.isfinite(F).all(1)
    rows = np.flatnonzero(finite_rows)
    if len(rows) < 2:
        return Finding("near-duplicates", "skip", "fewer than two finite examples")
    with one_thread():
        nn = NearestNeighbors(radius=distance).fit(F[rows])
        dist, nbrs = nn.radius_neighbors(F[rows], sort_results=True)
    pairs_same, pairs_diff = [], []
    for a, (d, nb) in enumerate(zip(dist, nbrs)):
        for dd, b in zip(d, nb):
            if b <= a or dd == 0.0:  # each pair once; exact copies are the duplicates check's job
                continue
            i, j = int(rows[a]), int(rows[b])
            (pairs_diff if y[i] != y[j] else pairs_same).append((i, j))
    if pairs_diff:
        idx = sorted({i for p in pairs_diff for i in p})
        return Finding("near-duplicates", "fail",
                       f"{len(pairs_diff)} pair(s) closer than {distance:g} with different labels: "
                       f"{_list(pairs_diff)}", tuple(idx))
    if pairs_same:
        idx = sorted({i for p in pairs_same for i in p})
        return Finding("near-duplicates", "warn", f"{len(pairs_same)} pair(s) closer than {distance:g} "
                       f"(same labels): {_list(pairs_same)}", tuple(idx))
    return Finding("near-duplicates", "pass", f"no two inputs closer than {distance:g}")


def class_shares(y: Any, n_classes: int) -> np.ndarray:
    """The share of each class among the labels (sums to 1) (taught in 03_data_defenses)."""
    n_classes = v.integer(n_classes, "n_classes", "class_shares", low=2)
    y = v.labels(y, "class_shares", n_classes=n_classes)
    return np.bincount(y, minlength=n_classes) / len(y)


def _finding_balance(y: np.ndarray, n_classes: int, reference: np.ndarray | None, tolerance: float) -> Finding:
    if reference is None:
        return Finding("class balance", "skip", "no reference labels or shares given")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        return Finding("class balance", "skip", "labels are not valid class indices (see schema)")
    shares = np.bincount(y, minlength=n_classes) / len(y)
    diff = shares - reference
    bad = np.flatnonzero(np.abs(diff) > tolerance).tolist()
    worst = int(np.argmax(np.abs(diff)))
    if bad:
        parts = [f"class {c}: {shares[c]:.1%} vs {reference[c]:.1%} in the reference "
                 f"({100 * diff[c]:+.1f} points)" for c in bad]
        return Finding("class balance", "fail",
                       f"{'; '.join(parts)}; tolerance ±{100 * tolerance:.1f} points", tuple(bad))
    return Finding("class balance", "pass", f"every class within ±{100 * tolerance:.1f} points of the reference "
                   f"(largest gap: class {worst}, {100 * diff[worst]:+.1f})")


def validate(X: Any, y: Any, *, n_classes: int, input_shape: Sequence[int] | None = None,
             value_range: tuple[float, float] | None = (0.0, 1.0), reference: Any = None,
             balance_tolerance: float = 0.03, near_duplicate_distance: float = 0.3) -> ValidationReport:
    """Check a training set before training on it (taught in 03_data_defenses).

    Checks, each a :class:`Finding` in the report:

    - ``schema``: the shape of one input, a float dtype, integer labels in ``[0, n_classes)``;
    - ``value range``: every value finite and inside ``value_range``;
    - ``duplicates``: identical inputs (a failure when their labels differ);
    - ``near-duplicates``: inputs closer than ``near_duplicate_distance`` (L2 over all
      values; a failure when their labels differ, a warning otherwise);
    - ``class balance``: each class's share within ``balance_tolerance`` of the
      reference (trusted labels, or the expected shares of the classes).

    Args:
        X: inputs, one row (or image) per example.
        y: labels.
        n_classes: how many classes the task has.
        input_shape: the expected shape of one input, e.g. ``(1, 8, 8)``.
        value_range: allowed ``(low, high)``, or ``None`` to skip the range test.
        reference: trusted labels (1-D integers) or class shares (floats summing to 1).
        balance_tolerance: largest allowed gap in share, in [0, 1] (0.03 = 3 points).
        near_duplicate_distance: > 0.

    Raises:
        ValueError: empty data, inputs and labels of different lengths, or a bad option.
    """
    where = "validate"
    X = np.asarray(X)
    y = np.asarray(y)
    # Only what the checks need is refused here: NaN, values out of range, labels
    # out of range or of another dtype are *findings* of the report, not errors.
    if X.ndim < 2:
        v.fail(where, f"X has shape {X.shape}", "X must have one row (or image) per example, at least 2-D")
    if y.ndim != 1:
        v.fail(where, f"labels have shape {y.shape}", "labels must be a 1-D array, one per example")
    if len(X) == 0:
        v.fail(where, "X is empty", "give at least one example")
    if len(X) != len(y):
        v.fail(where, f"{len(y)} labels for {len(X)} inputs", "give one label per input")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        v.fail(where, f"inputs have dtype {X.dtype}", "inputs must be real numbers")
    n_classes = v.integer(n_classes, "n_classes", where, low=2)
    balance_tolerance = v.unit(balance_tolerance, "balance_tolerance", where)
    near_duplicate_distance = v.real(near_duplicate_distance, "near_duplicate_distance", where, 0.0, None,
                                     open_low=True)
    if value_range is not None:
        if len(value_range) != 2 or not all(v.is_real(b) for b in value_range) or value_range[0] > value_range[1]:
            v.fail(where, f"value_range = {value_range!r}", "value_range must be (low, high) with low <= high, or None")
    ref = None
    if reference is not None:
        r = np.asarray(reference)
        if r.ndim != 1 or len(r) == 0:
            v.fail(where, f"reference has shape {r.shape}", "reference must be 1-D labels or class shares")
        if np.issubdtype(r.dtype, np.integer):
            r = v.labels(r, where, n_classes=n_classes, name="reference labels")
            ref = np.bincount(r, minlength=n_classes) / len(r)
        else:
            if len(r) != n_classes or not np.isfinite(r).all() or (r < 0).any() or not np.isclose(r.sum(), 1.0):
                v.fail(where, f"reference shares are {r!r}",
                       f"reference shares must be {n_classes} non-negative numbers summing to 1")
            ref = r.astype(np.float64)
    F = X.reshape(len(X), -1).astype(np.float64)
    findings = [
        _finding_schema(X, y, n_classes, input_shape),
        _finding_values(F, value_range),
        _finding_duplicates(F, y),
        _finding_near_duplicates(F, y, near_duplicate_distance),
        _finding_balance(y, n_classes, ref, balance_tolerance),
    ]
    return ValidationReport(tuple(findings), len(X))


# --------------------------------------------------------------------------- detections and their scores


@dataclass(frozen=True)
class Detection:
    """What a detector flagged (taught in 03_data_defenses).

    Attributes:
        name: the detector, e.g. ``"activation clustering"``.
        flags: boolean mask, one entry per training example, ``True`` = suspected poison.
        scores: optional suspicion score per example (higher = more suspicious).
        per_class: optional table (one dict per class) of what the detector saw.
    """

    name: str
    flags: np.ndarray
    scores: np.ndarray | None = None
    per_class: tuple[dict, ...] = field(default=())

    def __post_init__(self) -> None:
        flags = np.array(self.flags, dtype=bool)
        flags.setflags(write=False)
        object.__setattr__(self, "flags", flags)
        if self.scores is not None:
            scores = np.array(self.scores, dtype=np.float64)
            if scores.shape != flags.shape:
                v.fail("Detection", f"scores have shape {scores.shape} for {len(flags)} flags",
                       "give one score per flag")
            scores.setflags(write=False)
            object.__setattr__(self, "scores", scores)

    @property
    def n_flagged(self) -> int:
        return int(self.flags.sum())

    @property
    def indices(self) -> np.ndarray:
        """Indices of the flagged examples."""
        return np.flatnonzero(self.flags)

    def metrics(self, poisoned: Any) -> metrics.DetectionMetrics:
        """Precision, recall and false-positive rate against the known poisoned examples
        (:func:`utils.metrics.detection_metrics`; taught in 03_data_defenses)."""
        return metrics.detection_metrics(self.flags, poisoned)

    def __repr__(self) -> str:
        return f"Detection({self.name!r}: {self.n_flagged} of {len(self.flags)} flagged)"


def flag_top(scores: Any, fraction: float) -> np.ndarray:
    """Flag the ``fraction`` of examples with the highest scores (ties broken by index)
    (taught in 03_data_defenses)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0:
        v.fail("flag_top", f"scores have shape {s.shape}", "scores must be a non-empty 1-D array, one per example")
    if not np.isfinite(s).all():
        v.fail("flag_top", "scores contain NaN or infinite values", "scores must be finite numbers")
    fraction = v.unit(fraction, "fraction", "flag_top")
    k = int(round(fraction * len(s)))
    flags = np.zeros(len(s), dtype=bool)
    flags[np.argsort(-s, kind="stable")[:k]] = True
    return flags


# --------------------------------------------------------------------------- anomaly detection


def isolation_forest_scores(features: Any, *, seed: int = 0, n_estimators: int = 200) -> np.ndarray:
    """Anomaly score per example from scikit-learn's IsolationForest (higher = more anomalous).

    Works on raw inputs (images are flattened) or on embeddings (taught in 03_data_defenses).
    """
    from sklearn.ensemble import IsolationForest

    where = "isolation_forest_scores"
    F = v.features(features, where)
    seed = v.integer(seed, "seed", where, 0, 2**32 - 1)
    n_estimators = v.integer(n_estimators, "n_estimators", where, low=1)
    with one_thread():
        forest = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(F)
        return -forest.score_samples(F)


def isolation_forest(features: Any, contamination: float = 0.05, *, seed: int = 0,
                     n_estimators: int = 200) -> Detection:
    """Flag the ``contamination`` share of examples that an IsolationForest finds most anomalous
    (taught in 03_data_defenses)."""
    contamination = v.unit(contamination, "contamination", "isolation_forest")
    scores = isolation_forest_scores(features, seed=seed, n_estimators=n_estimators)
    return Detection("isolation forest", flag_top(scores, contamination), scores)


# --------------------------------------------------------------------------- label consistency


def out_of_fold_proba(features: Any, y: Any, *, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Cross-validated class probabilities: each example is scored by a model that never saw it.

    A multinomial logistic regression (scikit-learn) on the features, ``n_folds``
    stratified folds shuffled by ``seed``. Classes missing from y get probability 0.
    Taught in 03_data_defenses.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    where = "out_of_fold_proba"
    F, y = _features_and_labels(features, y, where)
    n_folds = v.integer(n_folds, "n_folds", where, low=2)
    seed = v.integer(seed, "seed", where, 0, 2**32 - 1)
    present, counts = np.unique(y, return_counts=True)
    if len(present) < 2:
        v.fail(where, f"the labels hold one class ({present[0]})", "give at least two classes")
    if counts.min() < n_folds:
        v.fail(where, f"class {present[counts.argmin()]} has {counts.min()} example(s), fewer than n_folds={n_folds}",
               "every class needs at least n_folds examples")
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with one_thread():
        P = cross_val_predict(LogisticRegression(max_iter=2000), F, y, cv=cv, method="predict_proba")
    out = np.zeros((len(y), int(y.max()) + 1))
    out[:, present] = P
    return out


def label_issues(features: Any, y: Any, *, n_folds: int = 5, seed: int = 0) -> Detection:
    """Labels that disagree with a cross-validated model, found by cleanlab's confident learning.

    ``cleanlab.filter.find_label_issues`` (prune by noise rate) on the
    out-of-fold probabilities of :func:`out_of_fold_proba`; the score is
    ``1 - p(given label)``. Taught in 03_data_defenses.
    """
    from cleanlab.filter import find_label_issues

    F, y = _features_and_labels(features, y, "label_issues")
    P = out_of_fold_proba(F, y, n_folds=n_folds, seed=seed)
    present = np.unique(y)
    # cleanlab wants labels 0..K-1 that all occur: drop classes absent from y
    remap = np.full(P.shape[1], -1)
    remap[present] = np.arange(len(present))
    Pk = P[:, present]
    Pk = Pk / Pk.sum(1, keepdims=True)
    flags = find_label_issues(remap[y], Pk, n_jobs=1)
    scores = 1.0 - P[np.arange(len(y)), y]
    return Detection("label issues (cleanlab)", flags, scores)


def knn_label_disagreement(features: Any, y: Any, *, k: int = 10, threshold: float = 0.5) -> Detection:
    """Flag examples whose ``k`` nearest neighbours mostly carry another label.

    The score is the share of the ``k`` neighbours (the example itself excluded)
    with a different label; an example is flagged when it exceeds ``threshold``.
    Taught in 03_data_defenses.
    """
    from sklearn.neighbors import NearestNeighbors

    where = "knn_label_disagreement"
    F, y = _features_and_labels(features, y, where)
    k = v.integer(k, "k", where, low=1)
    threshold = v.unit(threshold, "threshold", where)
    if k >= len(F):
        v.fail(where, f"k = {k} with {len(F)} examples", f"k must be below the number of examples ({len(F)})")
    with one_thread():
        _, nbrs = NearestNeighbors(n_neighbors=k + 1).fit(F).kneighbors(F)
    # drop each example itself (the first neighbour unless exact duplicates tie)
    others = np.array([[j for j in row if j != i][:k] for i, row in enumerate(nbrs)])
    scores = (y[others] != y[:, None]).mean(1)
    return Detection("k-NN label disagreement", scores > threshold, scores)


def spectral_signature_scores(features: Any, y: Any) -> np.ndarray:
    """Spectral-signature outlier scores (Tran et al., 2018).

    For each class: center the representations, take the top right singular
    vector ``v`` of the centered matrix, and score each example by its squared
    projection ``((r - mean) · v)²``. Poisoned examples of a class share a
    direction the clean ones lack, so they get the largest scores. Taught in 03_data_defenses.
    """
    F, y = _features_and_labels(features, y, "spectral_signature_scores")
    scores = np.zeros(len(y))
    with one_thread():
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            R = F[idx] - F[idx].mean(0)
            _, _, vt = np.linalg.svd(R, full_matrices=False)
            scores[idx] = (R @ vt[0]) ** 2
    return scores


def spectral_signatures(features: Any, y: Any, expected_fraction: float = 0.05,
                        factor: float = 1.5, classes: Sequence[int] | None = None) -> Detection:
    """Tran et al.'s rule: in every class, flag the ``factor × expected_fraction`` highest scores.

    ``expected_fraction`` is an upper bound on the share of poison *within a
    class*; the ``factor`` 1.5 leaves a margin so that most poison is caught.
    ``classes`` limits the removal to suspected classes (default: every class).
    Taught in 03_data_defenses.
    """
    where = "spectral_signatures"
    expected_fraction = v.unit(expected_fraction, "expected_fraction", where)
    factor = v.real(factor, "factor", where, 0.0, None, open_low=True)
    scores = spectral_signature_scores(features, y)
    y = np.asarray(y)
    present = np.unique(y)
    if classes is None:
        chosen = present
    else:
        chosen = np.asarray(classes)
        if chosen.ndim != 1 or len(chosen) == 0 or not np.issubdtype(chosen.dtype, np.integer):
            v.fail(where, f"classes = {classes!r}", "classes must be a non-empty list of class indices")
        missing = sorted(set(chosen.tolist()) - set(present.tolist()))
        if missing:
            v.fail(where, f"classes {missing} do not occur in the labels",
                   f"classes must be among those present: {present.tolist()}")
    flags = np.zeros(len(y), dtype=bool)
    share = min(1.0, factor * expected_fraction)
    rows = []
    for c in chosen:
        idx = np.flatnonzero(y == c)
        k = int(math.ceil(share * len(idx) - 1e-9))
        flags[idx[np.argsort(-scores[idx], kind="stable")[:k]]] = True
        rows.append({"class": int(c), "size": len(idx), "flagged": k})
    return Detection("spectral signatures", flags, scores, tuple(rows))


def activation_clustering(features: Any, y: Any, *, n_components: int = 10, max_size: float = 0.35,
                          reference: tuple[Any, Any] | None = None, max_reference_ratio: float = 0.5,
                          seed: int = 0) -> Detection:
    """Activation clustering (Chen et al., 2018), optionally checked against trusted data.

    For each class: reduce the activations to ``n_components`` dimensions with
    PCA, split them into two clusters with k-means, and flag the smaller
    cluster when it holds less than ``max_size`` of the class.

    With ``reference=(features_ref, y_ref)`` (activations of a small *trusted*
    set, e.g. the validation split), a small cluster is flagged only if the
    trusted examples of that class rarely fall into it: its share among them
    must be below ``max_reference_ratio`` × its share in the training class.
    A natural sub-style of a digit appears in trusted data too; a trigger does not.

    The score of an example is its class's small-cluster share if it sits in
    that cluster, else 0 (the detector is a yes/no rule per cluster). Taught in 03_data_defenses.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    where = "activation_clustering"
    F, y = _features_and_labels(features, y, where)
    n_components = v.integer(n_components, "n_components", where, low=1)
    max_size = v.real(max_size, "max_size", where, 0.0, 0.5, open_low=True)
    max_reference_ratio = v.unit(max_reference_ratio, "max_reference_ratio", where)
    seed = v.integer(seed, "seed", where, 0, 2**32 - 1)
    Fr = yr = None
    if reference is not None:
        if not isinstance(reference, (tuple, list)) or len(reference) != 2:
            v.fail(where, f"reference is a {type(reference).__name__}",
                   "reference must be a pair (features_ref, y_ref)")
        Fr, yr = _features_and_labels(reference[0], reference[1], where, name="reference features")
        if Fr.shape[1] != F.shape[1]:
            v.fail(where, f"reference features have {Fr.shape[1]} columns, the training features {F.shape[1]}",
                   "both must come from the same layer")
    flags = np.zeros(len(y), dtype=bool)
    scores = np.zeros(len(y))
    rows = []
    with one_thread():
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            row: dict[str, Any] = {"class": int(c), "size": len(idx)}
            if len(idx) < 4:
                row.update(small_share=float("nan"), silhouette=float("nan"), flagged=False)
                rows.append(row)
                continue
            k = max(1, min(n_components, len(idx) - 1, F.shape[1]))
            pca = PCA(n_components=k, svd_solver="full").fit(F[idx])
            Z = pca.transform(F[idx])
            km = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(Z)
            counts = np.bincount(km.labels_, minlength=2)
            small = int(np.argmin(counts))
            share = counts[small] / len(idx)
            members = idx[km.labels_ == small]
            sil = silhouette_score(Z, km.labels_) if 0 < counts[small] < len(idx) else float("nan")
            flagged = bool(share < max_size)
            row.update(small_share=float(share), silhouette=float(sil))
            if Fr is not None:
                ref_idx = np.flatnonzero(yr == c)
                if len(ref_idx):
                    ref_share = float((km.predict(pca.transform(Fr[ref_idx])) == small).mean())
                    row["reference_share"] = ref_share
                    flagged = bool(flagged and ref_share < max_reference_ratio * share)
                else:
                    row["reference_share"] = float("nan")
            row["flagged"] = flagged
            rows.append(row)
            scores[members] = share
            if flagged:
                flags[members] = True
    name = "activation clustering" + (" + trusted reference" if reference is not None else "")
    return Detection(name, flags, scores, tuple(rows))


#: The detectors :func:`standard_detectors` runs, in the order of lesson 03's table.
DETECTORS = ("isolation forest, pixels", "isolation forest, activations", "label issues (cleanlab)",
             "spectral signatures", "spectral signatures, suspect class", "activation clustering",
             "activation clustering + trusted reference")


def standard_detectors(model, X: Any, y: Any, X_ref: Any, y_ref: Any, *, n_classes: int, layer: int = 0,
                       max_size: float = 0.35, expected_fraction: float = 0.05, seed: int = 0,
                       only: Sequence[str] | None = None) -> dict[str, Detection]:
    """Lesson 03's detectors on one (possibly poisoned) training set, by name (see :data:`DETECTORS`).

    ``model`` is the model trained on ``(X, y)``; its hidden layer ``layer`` gives
    the representations. ``X_ref, y_ref`` is the trusted set: its class shares give
    the suspect class (largest gap) and the excess share used as ε by "spectral
    signatures, suspect class", its activations the reference of activation
    clustering. ``expected_fraction`` is the contamination of the isolation
    forests and the ε of the paper's spectral rule. ``only`` limits the run to some
    names. Taught in 03_data_defenses.
    """
    from utils import models

    where = "standard_detectors"
    X = np.asarray(X)
    y = v.labels(y, where, n=len(X))
    y_ref = v.labels(y_ref, where, n=len(X_ref), name="y_ref")
    n_classes = v.integer(n_classes, "n_classes", where, low=2)
    names = DETECTORS if only is None else tuple(only)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown or not names:
        v.fail(where, f"only = {only!r}", f"only must name some of {list(DETECTORS)}")
    found: dict[str, Detection] = {}
    H = models.hidden_activations(model, X, layer=layer) if set(names) - {DETECTORS[0], DETECTORS[2]} else None
    shares, ref_shares = class_shares(y, n_classes), class_shares(y_ref, n_classes)
    suspect = int(np.argmax(shares - ref_shares))
    for name in names:
        if name == DETECTORS[0]:
            d = isolation_forest(X, contamination=expected_fraction, seed=seed)
        elif name == DETECTORS[1]:
            d = isolation_forest(H, contamination=expected_fraction, seed=seed)
        elif name == DETECTORS[2]:
            d = label_issues(X, y, seed=seed)
        elif name == DETECTORS[3]:
            d = spectral_signatures(H, y, expected_fraction=expected_fraction)
        elif name == DETECTORS[4]:
            excess = max(0.0, 1 - ref_shares[suspect] / shares[suspect]) if shares[suspect] else 0.0
            d = spectral_signatures(H, y, expected_fraction=excess, classes=[suspect])
        else:
            H_ref = models.hidden_activations(model, X_ref, layer=layer) if name == DETECTORS[6] else None
            d = activation_clustering(H, y, max_size=max_size, seed=seed,
                                      reference=None if H_ref is None else (H_ref, y_ref))
        found[name] = Detection(name, d.flags, d.scores, d.per_class)
    return found


# --------------------------------------------------------------------------- retraining


@dataclass(frozen=True)
class RetrainResult:
    """A model retrained on the examples a detector left, and how it does (taught in 03_data_defenses)."""

    removed: int
    accuracy: float
    asr: float | None
    model: Any = field(repr=False, compare=False)

    def __str__(self) -> str:
        asr = "" if self.asr is None else f", attack success rate {self.asr:.3f}"
        return f"removed {self.removed}: test accuracy {self.accuracy:.3f}{asr}"


def retrain_without(config, X: Any, y: Any, flags: Any, X_test: Any, y_test: Any, *,
                    n_classes: int | None = None, backdoor=None) -> RetrainResult:
    """Retrain (cached) on the examples not flagged and measure accuracy and attack success.

    Args:
        config: a :class:`utils.training.TrainConfig`, e.g. ``training.preset("mlp")``.
        X, y: the (possibly poisoned) training set.
        flags: boolean mask of the examples to drop (e.g. ``detection.flags``).
        X_test, y_test: clean test data.
        backdoor: optional object with ``trigger`` and ``target`` (e.g.
            ``utils.attacks.poisoning.STANDARD_BACKDOOR``) to measure the attack success rate.

    Taught in 03_data_defenses.
    """
    from utils.attacks import poisoning
    from utils import training

    where = "retrain_without"
    X = np.asarray(X)
    if X.ndim < 2 or len(X) == 0:
        v.fail(where, f"X has shape {X.shape}", "X must be a non-empty batch, one row (or image) per example")
    y = v.labels(y, where, n=len(X))
    flags = np.asarray(flags)
    if flags.dtype != bool or flags.shape != (len(X),):
        v.fail(where, f"flags have dtype {flags.dtype} and shape {flags.shape}",
               f"flags must be a boolean mask of shape ({len(X)},)")
    if flags.all():
        v.fail(where, "every example is flagged", "leave some examples to train on")
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    keep = ~flags
    model = training.fit(config, X[keep], y[keep], n_classes)
    acc = training.accuracy(model, X_test, y_test)
    asr = None
    if backdoor is not None:
        asr = poisoning.attack_success_rate(lambda Z: training.predict(model, Z), X_test, y_test,
                                            backdoor.trigger, backdoor.target)
    return RetrainResult(int(flags.sum()), acc, asr, model)


@dataclass(frozen=True)
class DefenseOutcome:
    """One detector's result on a poisoned training set: detection quality and the retrained model
    (taught in 03_data_defenses)."""

    name: str
    metrics: metrics.DetectionMetrics
    retrained: RetrainResult

    def __str__(self) -> str:
        return f"{self.name}: {self.metrics}\n  retrained without them: {self.retrained}"

    __repr__ = __str__

    def as_dict(self) -> dict[str, Any]:
        """One row of :func:`outcomes_table` (taught in 03_data_defenses)."""
        row = {"detector": self.name, **self.metrics.as_dict(), "accuracy": self.retrained.accuracy}
        if self.retrained.asr is not None:
            row["asr"] = self.retrained.asr
        return row


def evaluate_defense(detection: Detection, poisoned: Any, config, X: Any, y: Any, X_test: Any, y_test: Any,
                     *, n_classes: int | None = None, backdoor=None, name: str | None = None) -> DefenseOutcome:
    """Precision / recall / FPR of a detection against the known poison, then :func:`retrain_without`.

    ``name`` labels the outcome (default: the detection's name). Taught in 03_data_defenses.
    """
    if not isinstance(detection, Detection):
        v.fail("evaluate_defense", f"detection is a {type(detection).__name__}",
               "give a Detection (what a detector such as activation_clustering returns)")
    found = detection.metrics(poisoned)
    retrained = retrain_without(config, X, y, detection.flags, X_test, y_test, n_classes=n_classes,
                                backdoor=backdoor)
    return DefenseOutcome(name or detection.name, found, retrained)


def outcomes_table(outcomes: Sequence[DefenseOutcome]):
    """A pandas DataFrame with one row per detector (rounded to 3 decimals) (taught in 03_data_defenses)."""
    import pandas as pd

    if not outcomes:
        v.fail("outcomes_table", "no outcomes given", "give at least one DefenseOutcome")
    return pd.DataFrame([o.as_dict() for o in outcomes]).set_index("detector").round(3)


__all__ = [
    "Finding", "ValidationReport", "validate", "class_shares",
    "Detection", "flag_top",
    "isolation_forest_scores", "isolation_forest",
    "out_of_fold_proba", "label_issues", "knn_label_disagreement",
    "spectral_signature_scores", "spectral_signatures", "activation_clustering",
    "DETECTORS", "standard_detectors",
    "RetrainResult", "retrain_without", "DefenseOutcome", "evaluate_defense", "outcomes_table",
]
