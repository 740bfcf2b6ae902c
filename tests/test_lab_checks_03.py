"""utils.lab_checks.lab03: the lab's stubs fail, the solution's answers pass."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

import utils
from utils import data, models, training
from utils.course import grading
from utils.attacks import poisoning
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


# The solution's answers (solutions/03_data_defenses_lab.ipynb).

def balance_gaps(y, y_ref, n_classes):
    share = np.bincount(y, minlength=n_classes) / len(y)
    share_ref = np.bincount(y_ref, minlength=n_classes) / len(y_ref)
    return share - share_ref


def spectral_scores(H, y):
    scores = np.zeros(len(y))
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        R = H[rows] - H[rows].mean(axis=0)
        _, _, vt = np.linalg.svd(R, full_matrices=False)
        scores[rows] = (R @ vt[0]) ** 2
    return scores


def precision_recall_fpr(flags, poisoned_idx):
    truth = np.zeros(len(flags), dtype=bool)
    truth[poisoned_idx] = True
    tp = np.sum(flags & truth)
    precision = tp / flags.sum() if flags.sum() else 0.0
    recall = tp / truth.sum()
    fpr = np.sum(flags & ~truth) / np.sum(~truth)
    return float(precision), float(recall), float(fpr)


def suspicious_cluster(H_c, H_ref_c, seed):
    pca = PCA(10, svd_solver="full").fit(H_c)
    kmeans = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(pca.transform(H_c))
    small = np.argmin(np.bincount(kmeans.labels_))
    in_small = kmeans.labels_ == small
    ref_share = np.mean(kmeans.predict(pca.transform(H_ref_c)) == small)
    return in_small if ref_share < 0.5 * in_small.mean() else np.zeros(len(H_c), dtype=bool)


def test_exercise_1(ctx, capsys):
    ds, yp, spec = ctx["ds"], ctx["yp"], ctx["spec"]
    kw = dict(yp=yp, ds=ds, spec=spec)
    stub = lambda y, y_ref, n: np.zeros(n)  # noqa: E731
    _fails(capsys, 1, stub, suspect=int(np.argmax(stub(yp, ds.y_val, ds.n_classes))), **kw)
    # counts instead of shares
    counts = lambda y, y_ref, n: np.bincount(y, minlength=n) - np.bincount(y_ref, minlength=n)  # noqa: E731
    assert "gap of class" in _fails(capsys, 1, counts, suspect=0, **kw)
    suspect = int(np.argmax(balance_gaps(yp, ds.y_val, ds.n_classes)))
    assert _passes(capsys, 1, balance_gaps, suspect=suspect, **kw).strip() == \
        "✅ PASSED  Exercise 1 (class-balance gaps)"


def test_exercise_2(ctx, capsys):
    H, yp = ctx["H"], ctx["yp"]
    _fails(capsys, 2, lambda H, y: np.zeros(len(y)), H=H, yp=yp)
    # forgot to center the rows
    def uncentered(H, y):
        scores = np.zeros(len(y))
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            _, _, vt = np.linalg.svd(H[rows], full_matrices=False)
            scores[rows] = (H[rows] @ vt[0]) ** 2
        return scores
    assert "scores differ" in _fails(capsys, 2, uncentered, H=H, yp=yp)
    _passes(capsys, 2, spectral_scores, H=H, yp=yp)


def test_exercise_3(ctx, capsys):
    kw = dict(H=ctx["H"], yp=ctx["yp"], poisoned=ctx["poisoned"])
    _fails(capsys, 3, lambda flags, idx: (0.0, 0.0, 0.0), **kw)
    # FPR over all examples instead of the clean ones
    def fpr_over_all(flags, idx):
        p, r, _ = precision_recall_fpr(flags, idx)
        truth = np.zeros(len(flags), dtype=bool)
        truth[idx] = True
        return p, r, float(np.sum(flags & ~truth) / len(flags))
    assert "FPR" in _fails(capsys, 3, fpr_over_all, **kw)
    _passes(capsys, 3, precision_recall_fpr, **kw)


def test_exercise_4(ctx, capsys):
    ds, yp, H, H_val = ctx["ds"], ctx["yp"], ctx["H"], ctx["H_val"]
    kw = dict(config=ctx["config"], Xp=ctx["Xp"], yp=yp, ds=ds, spec=ctx["spec"])
    assert "attack success rate" in _fails(capsys, 4, np.zeros(len(yp), dtype=bool), **kw)
    # flag the whole suspect class: too many removed
    assert "more than 10%" in _fails(capsys, 4, yp == 0, **kw)
    rows = np.flatnonzero(yp == 0)
    flags = np.zeros(len(yp), dtype=bool)
    flags[rows] = suspicious_cluster(H[rows], H_val[ds.y_val == 0], 0)
    _passes(capsys, 4, flags, **kw)
