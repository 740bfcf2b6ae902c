"""utils.lab_checks.lab03: the lab's stubs fail, the solution's answers and other correct answers
pass, and plausible wrong answers (each named) fail."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

import utils
from utils import data, metrics, models, training
from utils.course import grading
from utils.attacks import poisoning
from utils.defenses import data as dd
from utils.lab_checks import lab03

pytestmark = pytest.mark.notebooks  # about 25 s: the model trains (or loads) and exercise 4 retrains


@pytest.fixture(scope="module")
def ctx():
    utils.setup(0, plots=False)
    ds = data.load("digits", seed=0)
    spec = poisoning.STANDARD_BACKDOOR
    Xp, yp, poisoned = spec.poison(ds.X_train, ds.y_train)
    config = training.preset("mlp", seed=0)
    model = training.fit(config, Xp, yp, ds.n_classes)
    H = models.hidden_activations(model, Xp, layer=0)
    H_val = models.hidden_activations(model, ds.X_val, layer=0)
    return dict(ds=ds, spec=spec, Xp=Xp, yp=yp, poisoned=poisoned, config=config, H=H, H_val=H_val)


def _fails(capsys, *args, **kwargs):
    ok = lab03.check(*args, **kwargs)
    out = capsys.readouterr().out
    assert ok is False and out.startswith(grading.FAIL_MARK), out
    return out


def _passes(capsys, *args, **kwargs):
    ok = lab03.check(*args, **kwargs)
    out = capsys.readouterr().out
    assert ok is True and out.startswith(grading.PASS_MARK), out
    return out


# --------------------------------------------------------------------------- exercise 1

def balance_gaps(y, y_ref, n_classes):
    """The solution's."""
    share = np.bincount(y, minlength=n_classes) / len(y)
    share_ref = np.bincount(y_ref, minlength=n_classes) / len(y_ref)
    return share - share_ref


def gaps_loop(y, y_ref, n_classes):
    """Correct too: a Counter per set."""
    a, b = Counter(y.tolist()), Counter(y_ref.tolist())
    return [a[c] / len(y) - b[c] / len(y_ref) for c in range(n_classes)]


def gaps_class_shares(y, y_ref, n_classes):
    """Correct too: the library's class shares."""
    return dd.class_shares(y, n_classes) - dd.class_shares(y_ref, n_classes)


GAPS_WRONG = {
    "stub (zeros)": lambda y, y_ref, n: np.zeros(n),
    "counts instead of shares": lambda y, y_ref, n: np.bincount(y, minlength=n) - np.bincount(y_ref, minlength=n),
    "bincount without minlength": lambda y, y_ref, n: np.bincount(y) / len(y) - np.bincount(y_ref) / len(y_ref),
    "reversed sign (y_ref − y)": lambda y, y_ref, n: -balance_gaps(y, y_ref, n),
    "both shares divided by len(y)": lambda y, y_ref, n: (np.bincount(y, minlength=n)
                                                          - np.bincount(y_ref, minlength=n)) / len(y),
    "shares of y only": lambda y, y_ref, n: np.bincount(y, minlength=n) / len(y),
}


@pytest.mark.parametrize("name", GAPS_WRONG)
def test_exercise_1_wrong(ctx, capsys, name):
    ds, yp = ctx["ds"], ctx["yp"]
    out = _fails(capsys, 1, GAPS_WRONG[name], yp=yp, ds=ds, suspect=0, spec=ctx["spec"])
    assert "(class-balance gaps)" in out and "expected" not in out.split(":", 1)[1].replace("expected one", "")


def test_exercise_1_wrong_suspect(ctx, capsys):
    out = _fails(capsys, 1, balance_gaps, yp=ctx["yp"], ds=ctx["ds"], suspect=int(np.argmin(
        balance_gaps(ctx["yp"], ctx["ds"].y_val, 10))), spec=ctx["spec"])
    assert "grew the most" in out


@pytest.mark.parametrize("answer", [balance_gaps, gaps_loop, gaps_class_shares], ids=lambda f: f.__name__)
def test_exercise_1_right(ctx, capsys, answer):
    ds, yp = ctx["ds"], ctx["yp"]
    suspect = int(np.argmax(balance_gaps(yp, ds.y_val, ds.n_classes)))
    assert _passes(capsys, 1, answer, yp=yp, ds=ds, suspect=suspect, spec=ctx["spec"]).strip() == \
        "✅ PASSED  Exercise 1 (class-balance gaps)"


# --------------------------------------------------------------------------- exercise 2

def spectral_budget_flags(H, y, y_ref, factor=1.5):
    """The solution's."""
    flags = np.zeros(len(y), dtype=bool)
    scores = dd.spectral_signature_scores(H, y)
    n_classes = int(max(y.max(), y_ref.max())) + 1
    shares, ref_shares = dd.class_shares(y, n_classes), dd.class_shares(y_ref, n_classes)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        eps = max(0.0, 1 - ref_shares[c] / shares[c])
        k = int(np.ceil(factor * eps * len(rows)))
        flags[rows[np.argsort(-scores[rows])[:k]]] = True
    return flags


def budget_own_scores(H, y, y_ref, factor=1.5):
    """Correct too: own SVD scores, counts by bincount, rounding down, a list of classes."""
    flags = np.zeros(len(y), dtype=bool)
    n = max(int(y.max()), int(y_ref.max())) + 1
    share, ref = np.bincount(y, minlength=n) / len(y), np.bincount(y_ref, minlength=n) / len(y_ref)
    for c in sorted(set(y.tolist())):
        rows = np.flatnonzero(y == c)
        R = H[rows] - H[rows].mean(axis=0)
        score = (R @ np.linalg.svd(R, full_matrices=False)[2][0]) ** 2
        k = int(factor * max(0.0, 1 - ref[c] / share[c]) * len(rows))
        flags[rows[np.argsort(score)[::-1][:k]]] = True
    return flags


def _budget(eps_of, *, lowest=False, clip=True):
    def flags_of(H, y, y_ref, factor=1.5):
        flags = np.zeros(len(y), dtype=bool)
        scores = dd.spectral_signature_scores(H, y)
        n = int(max(y.max(), y_ref.max())) + 1
        shares, ref_shares = dd.class_shares(y, n), dd.class_shares(y_ref, n)
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            eps = eps_of(shares[c], ref_shares[c], factor)
            eps = max(0.0, eps) if clip else eps
            k = int(np.ceil(eps * len(rows)))
            order = np.argsort(scores[rows] if lowest else -scores[rows])
            flags[rows[order[:k]]] = True
        return flags
    return flags_of


def _library_budget(H, y, y_ref, factor=1.5):
    flags = np.zeros(len(y), dtype=bool)
    n = int(max(y.max(), y_ref.max())) + 1
    shares, ref_shares = dd.class_shares(y, n), dd.class_shares(y_ref, n)
    for c in np.unique(y):
        eps = max(0.0, 1 - ref_shares[c] / shares[c])
        flags |= dd.spectral_signatures(H, y, expected_fraction=eps, factor=factor, classes=[int(c)]).flags
    return flags


BUDGET_WRONG = {
    "stub (nothing flagged)": lambda H, y, y_ref, factor=1.5: np.zeros(len(y), dtype=bool),
    "ε = 5% in every class (the poison rate)": _budget(lambda s, r, f: f * 0.05),
    "no factor (ε × n_c)": _budget(lambda s, r, f: 1 - r / s),
    "ε = the gap in points (share − trusted share)": _budget(lambda s, r, f: f * (s - r)),
    "ε inverted: 1 − share / trusted share": _budget(lambda s, r, f: f * (1 - s / r)),
    "the lowest scores": _budget(lambda s, r, f: f * (1 - r / s), lowest=True),
    "negative ε not clipped": _budget(lambda s, r, f: f * (1 - r / s), clip=False),
    "factor fixed at 1.5": _budget(lambda s, r, f: 1.5 * (1 - r / s)),
    "calls dd.spectral_signatures": _library_budget,
}


@pytest.mark.parametrize("name", BUDGET_WRONG)
def test_exercise_2_wrong(ctx, capsys, name):
    out = _fails(capsys, 2, BUDGET_WRONG[name], H=ctx["H"], yp=ctx["yp"], ds=ctx["ds"])
    if name.startswith("calls"):
        assert "your code calls utils.defenses.data.spectral_signatures" in out


@pytest.mark.parametrize("answer", [spectral_budget_flags, budget_own_scores], ids=lambda f: f.__name__)
def test_exercise_2_right(ctx, capsys, answer):
    _passes(capsys, 2, answer, H=ctx["H"], yp=ctx["yp"], ds=ctx["ds"])


# --------------------------------------------------------------------------- exercise 3

def precision_recall_fpr(flags, poisoned_idx):
    """The solution's."""
    truth = np.zeros(len(flags), dtype=bool)
    truth[poisoned_idx] = True
    tp = np.sum(flags & truth)
    precision = tp / flags.sum() if flags.sum() else 0.0
    recall = tp / truth.sum()
    fpr = np.sum(flags & ~truth) / np.sum(~truth)
    return float(precision), float(recall), float(fpr)


def prf_sets(flags, poisoned_idx):
    """Correct too: with Python sets."""
    flagged, bad = set(np.flatnonzero(flags).tolist()), set(np.asarray(poisoned_idx).tolist())
    clean = len(flags) - len(bad)
    return (len(flagged & bad) / len(flagged) if flagged else 0, len(flagged & bad) / len(bad),
            len(flagged - bad) / clean)


def prf_isin(flags, poisoned_idx):
    """Correct too: np.isin, returned as a list of numpy floats."""
    truth = np.isin(np.arange(len(flags)), poisoned_idx)
    return [np.float64((flags & truth).sum() / max(flags.sum(), 1)), np.mean(flags[truth]), np.mean(flags[~truth])]


def _fpr_over_all(flags, idx):
    p, r, _ = precision_recall_fpr(flags, idx)
    truth = np.zeros(len(flags), dtype=bool)
    truth[idx] = True
    return p, r, float(np.sum(flags & ~truth) / len(flags))


def _nan_precision(flags, idx):
    truth = np.isin(np.arange(len(flags)), idx)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (float(np.sum(flags & truth) / flags.sum()), float(np.mean(flags[truth])),
                float(np.mean(flags[~truth])))


def _swapped(flags, idx):
    p, r, f = precision_recall_fpr(flags, idx)
    return r, p, f


def _global_truth(ctx):
    poisoned = ctx["poisoned"]
    return lambda flags, idx: precision_recall_fpr(flags, poisoned)


PRF_WRONG = {
    "stub (zeros)": lambda ctx: (lambda flags, idx: (0.0, 0.0, 0.0)),
    "FPR over all examples": lambda ctx: _fpr_over_all,
    "precision NaN when nothing is flagged": lambda ctx: _nan_precision,
    "precision and recall swapped": lambda ctx: _swapped,
    "the lab's poisoned indices instead of the argument": _global_truth,
    "calls metrics.detection_metrics": lambda ctx: (lambda flags, idx: tuple(
        metrics.detection_metrics(flags, idx).as_dict().values())[:3]),
}


@pytest.mark.parametrize("name", PRF_WRONG)
def test_exercise_3_wrong(ctx, capsys, name):
    kw = dict(H=ctx["H"], yp=ctx["yp"], poisoned=ctx["poisoned"])
    out = _fails(capsys, 3, PRF_WRONG[name](ctx), **kw)
    assert "expected" not in out


@pytest.mark.parametrize("answer", [precision_recall_fpr, prf_sets, prf_isin], ids=lambda f: f.__name__)
def test_exercise_3_right(ctx, capsys, answer):
    _passes(capsys, 3, answer, H=ctx["H"], yp=ctx["yp"], poisoned=ctx["poisoned"])


# --------------------------------------------------------------------------- exercise 4

def suspicious_cluster(H_c, H_ref_c, seed):
    """The solution's."""
    pca = PCA(10, svd_solver="full").fit(H_c)
    kmeans = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(pca.transform(H_c))
    small = np.argmin(np.bincount(kmeans.labels_))
    in_small = kmeans.labels_ == small
    share = in_small.mean()
    ref_share = np.mean(kmeans.predict(pca.transform(H_ref_c)) == small)
    if share < 0.35 and ref_share < 0.5 * share:
        return in_small
    return np.zeros(len(H_c), dtype=bool)


def suspicious_cluster_variant(H_c, H_ref_c, seed):
    """Correct too: fit_transform / fit_predict, counts by sum, a list returned through np.array."""
    pca = PCA(n_components=10, svd_solver="full")
    Z = pca.fit_transform(H_c)
    km = KMeans(2, n_init=10, random_state=seed)
    labels = km.fit_predict(Z)
    small = 0 if np.sum(labels == 0) < np.sum(labels == 1) else 1
    n_small = int(np.sum(labels == small))
    ref_small = int(np.sum(km.predict(pca.transform(H_ref_c)) == small))
    ok = n_small < 0.35 * len(H_c) and ref_small / len(H_ref_c) < 0.5 * n_small / len(H_c)
    return np.array([ok and lab == small for lab in labels], dtype=bool)


def _detector(*, size_test=True, reference_test=True, absolute_ratio=False, larger=False):
    def detect(H_c, H_ref_c, seed):
        pca = PCA(10, svd_solver="full").fit(H_c)
        kmeans = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(pca.transform(H_c))
        pick = np.argmax if larger else np.argmin
        small = pick(np.bincount(kmeans.labels_))
        in_small = kmeans.labels_ == small
        share = in_small.mean()
        ref_share = np.mean(kmeans.predict(pca.transform(H_ref_c)) == small)
        ok = (share < 0.35 or not size_test) and \
            (not reference_test or ref_share < (0.5 if absolute_ratio else 0.5 * share))
        return in_small if ok else np.zeros(len(H_c), dtype=bool)
    return detect


def _ground_truth(ctx):
    rows = np.flatnonzero(ctx["yp"] == 0)
    truth = np.isin(rows, ctx["poisoned"])
    return lambda H_c, H_ref_c, seed: truth if len(H_c) == len(rows) else np.zeros(len(H_c), dtype=bool)


def _library_call(H_c, H_ref_c, seed):
    y, y_ref = np.zeros(len(H_c), dtype=int), np.zeros(len(H_ref_c), dtype=int)
    return dd.activation_clustering(H_c, y, reference=(H_ref_c, y_ref), seed=seed).flags


DETECTOR_WRONG = {
    "stub (nothing flagged)": lambda ctx: (lambda H_c, H_ref_c, seed: np.zeros(len(H_c), dtype=bool)),
    "size test only: return in_small (no trusted reference)": lambda ctx: _detector(reference_test=False),
    "trusted reference only (no size test)": lambda ctx: _detector(size_test=False),
    "reference share below 0.5, not 0.5 × the training share": lambda ctx: _detector(absolute_ratio=True),
    "the larger cluster": lambda ctx: _detector(larger=True),
    "flags from the ground-truth poisoned indices": _ground_truth,
    "calls dd.activation_clustering(..., reference=...)": lambda ctx: _library_call,
}


@pytest.mark.parametrize("name", DETECTOR_WRONG)
def test_exercise_4_wrong(ctx, capsys, name):
    kw = {k: ctx[k] for k in ("H", "H_val", "yp", "ds", "config", "Xp", "spec")}
    out = _fails(capsys, 4, DETECTOR_WRONG[name](ctx), seed=0, **kw)
    if name.startswith("calls"):
        assert "your code calls utils.defenses.data.activation_clustering" in out


@pytest.mark.parametrize("answer", [suspicious_cluster, suspicious_cluster_variant], ids=lambda f: f.__name__)
def test_exercise_4_right(ctx, capsys, answer):
    kw = {k: ctx[k] for k in ("H", "H_val", "yp", "ds", "config", "Xp", "spec")}
    _passes(capsys, 4, answer, seed=0, **kw)


def test_exercise_4_made_up_cases():
    """The made-up classes say what they claim: the size test alone flags the sub-style, the
    reference test alone flags the large split, the lesson's detector only the trigger."""
    rng = np.random.default_rng(7)
    trigger, substyle, split = (lab03._two_groups(rng, *sizes) for sizes in
                                [(130, 40, 40, 0), (130, 40, 30, 10), (100, 75, 40, 0)])
    assert lab03._reference_mask(*trigger, 0).sum() == 40
    assert not lab03._reference_mask(*substyle, 0).any() and _detector(reference_test=False)(*substyle, 0).sum() == 40
    assert not lab03._reference_mask(*split, 0).any() and _detector(size_test=False)(*split, 0).sum() == 75


# --------------------------------------------------------------------------- exercise 5

EVASIVE = poisoning.BackdoorSpec(poisoning.STANDARD_BACKDOOR.trigger, target=0, poison_rate=0.15)

EVASIVE_WRONG = {
    "the standard attack (activation clustering finds it)": poisoning.STANDARD_BACKDOOR,
    "0.2% poison: evades by having no backdoor": poisoning.BackdoorSpec(poisoning.STANDARD_BACKDOOR.trigger, 0, 0.002),
    "0.5% poison: spectral signatures still find it": poisoning.BackdoorSpec(poisoning.STANDARD_BACKDOOR.trigger,
                                                                             0, 0.005),
    "a 1-pixel trigger in the centre (evades, low ASR)": poisoning.BackdoorSpec(poisoning.trigger_at(1, "centre"),
                                                                                0, 0.10),
    "30% poison (more than the attacker controls)": poisoning.BackdoorSpec(poisoning.STANDARD_BACKDOOR.trigger,
                                                                           0, 0.30),
    "a Trigger instead of a BackdoorSpec": poisoning.STANDARD_BACKDOOR.trigger,
}


@pytest.mark.parametrize("name", EVASIVE_WRONG)
def test_exercise_5_wrong(ctx, capsys, name):
    _fails(capsys, 5, EVASIVE_WRONG[name], ds=ctx["ds"], config=ctx["config"], seed=0)


@pytest.mark.parametrize("answer", [EVASIVE, poisoning.BackdoorSpec(poisoning.STANDARD_BACKDOOR.trigger, 3, 0.10),
                                    poisoning.BackdoorSpec(poisoning.STANDARD_BACKDOOR.trigger, 0, 0.20)],
                         ids=["15% poison", "10% poison, target 3", "20% poison"])
def test_exercise_5_right(ctx, capsys, answer):
    _passes(capsys, 5, answer, ds=ctx["ds"], config=ctx["config"], seed=0)


# --------------------------------------------------------------------------- exercise 6

def repaired_detector(H, y, H_ref, y_ref, seed):
    """The solution's: 2 and 3 clusters per class, each tested against the trusted rows, no size test."""
    flags = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        pca = PCA(10, svd_solver="full").fit(H[rows])
        Z, Z_ref = pca.transform(H[rows]), pca.transform(H_ref[y_ref == c])
        for k in (2, 3):
            kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(Z)
            ref_labels = kmeans.predict(Z_ref)
            for j in range(k):
                if np.mean(ref_labels == j) < 0.25 * np.mean(kmeans.labels_ == j):
                    flags[rows[kmeans.labels_ == j]] = True
    return flags


def repaired_three_clusters(H, y, H_ref, y_ref, seed):
    """Correct too (for this seed): 3 clusters only, fit_predict, counts instead of shares."""
    flags = np.zeros(len(y), dtype=bool)
    for c in set(y.tolist()):
        rows = np.flatnonzero(y == c)
        pca = PCA(n_components=10, svd_solver="full")
        km = KMeans(3, n_init=10, random_state=seed)
        labels = km.fit_predict(pca.fit_transform(H[rows]))
        ref = km.predict(pca.transform(H_ref[y_ref == c]))
        for j in range(3):
            if np.sum(ref == j) / len(ref) < 0.25 * np.sum(labels == j) / len(labels):
                flags[rows[labels == j]] = True
    return flags


def _per_class_detector(one_class):
    def detect(H, y, H_ref, y_ref, seed):
        flags = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            flags[rows] = one_class(H[rows], H_ref[y_ref == c], seed)
        return flags
    return detect


def _per_class_any_cluster(ratio, k=2):
    def detect(H, y, H_ref, y_ref, seed):
        flags = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            pca = PCA(10, svd_solver="full").fit(H[rows])
            km = KMeans(k, n_init=10, random_state=seed).fit(pca.transform(H[rows]))
            ref = km.predict(pca.transform(H_ref[y_ref == c]))
            for j in range(k):
                if np.mean(ref == j) < ratio * np.mean(km.labels_ == j):
                    flags[rows[km.labels_ == j]] = True
        return flags
    return detect


def _ac_without_reference(H, y, H_ref, y_ref, seed):
    return dd.activation_clustering(H, y, max_size=0.5, seed=seed).flags


def _budget_spectral(H, y, H_ref, y_ref, seed):
    return spectral_budget_flags(H, y, y_ref)


REPAIR_WRONG = {
    "stub (nothing flagged)": lambda H, y, H_ref, y_ref, seed: np.zeros(len(y), dtype=bool),
    "exercise 4's detector (size test kept)": _per_class_detector(_detector()),
    "size test dropped, still only the smaller of two clusters": _per_class_detector(_detector(size_test=False)),
    "smaller cluster of every class, no reference": _ac_without_reference,
    "spectral signatures with exercise 2's budget": _budget_spectral,
    "two clusters, the reference ratio of exercise 4 (0.5), any size": _per_class_any_cluster(0.5),
}


def _kw6(ctx, evasive=EVASIVE):
    return dict(evasive=evasive, ds=ctx["ds"], config=ctx["config"], H=ctx["H"], H_val=ctx["H_val"],
                yp=ctx["yp"], poisoned=ctx["poisoned"], seed=0)


@pytest.mark.parametrize("name", REPAIR_WRONG)
def test_exercise_6_wrong(ctx, capsys, name):
    _fails(capsys, 6, REPAIR_WRONG[name], **_kw6(ctx))


def test_exercise_6_needs_exercise_5(ctx, capsys):
    out = _fails(capsys, 6, repaired_detector, **_kw6(ctx, poisoning.STANDARD_BACKDOOR))
    assert "exercise 5 first" in out


@pytest.mark.parametrize("answer", [repaired_detector, repaired_three_clusters], ids=lambda f: f.__name__)
def test_exercise_6_right(ctx, capsys, answer):
    _passes(capsys, 6, answer, **_kw6(ctx))
