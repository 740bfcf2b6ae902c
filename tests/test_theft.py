"""utils.theft: extraction through the API, output policies and calibration, PRADA, watermark and
fingerprint (06_model_theft_and_privacy)."""
from __future__ import annotations

import numpy as np
import pytest

from utils import serving, theft, training
from utils.serving import policy
from utils.validation import ValidationError

pytestmark = pytest.mark.notebooks  # trains (or loads) the course MLP and starts a server


# --------------------------------------------------------------------------- policies and calibration

def test_policies_keep_or_drop_what_they_say():
    P = np.array([[0.62, 0.3, 0.08], [0.1, 0.15, 0.75], [0.4, 0.45, 0.15]])
    y = np.array([0, 2, 0])
    labels, S = theft.served(P, "full")
    assert labels.tolist() == [0, 2, 1] and np.allclose(S, P)
    _, S = theft.served(P, "rounded", decimals=1)
    assert np.allclose(S, [[0.6, 0.3, 0.1], [0.1, 0.2, 0.8], [0.4, 0.4, 0.2]])  # round half to even: 0.15 -> 0.2
    labels, S = theft.served(P, "label")  # the arg-max per row of a batch, one-hot
    assert labels.tolist() == [0, 2, 1] and S.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    labels, S = theft.served(P, "reverse_sigmoid")
    assert labels.tolist() == [0, 2, 1] and np.allclose(S.sum(1), 1)
    rows = {r["policy"]: r for r in theft.honest_cost(P, y)}
    assert all(r["accuracy"] == pytest.approx(2 / 3) for r in rows.values())  # the labels are the model's
    assert rows["full"]["argmax_kept"] == rows["label"]["argmax_kept"] == 1.0


def test_reverse_sigmoid_keeps_the_argmax_of_the_course_model_on_almost_every_digit(course):
    ds, model = course
    P = training.predict_proba(model, ds.X_test)
    S = policy.reverse_sigmoid(P, 1.0, 0.4)
    kept = (S.argmax(1) == P.argmax(1)).mean()
    assert 0.97 <= kept <= 1.0
    assert (policy.reverse_sigmoid(P, 2.0, 0.4).argmax(1) == P.argmax(1)).mean() < 0.5  # too large a beta flips it


def test_calibration_metrics_on_made_up_cases():
    y = np.array([0, 1, 0, 1])
    certain_right = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert theft.expected_calibration_error(certain_right, y) == 0.0 and theft.brier_score(certain_right, y) == 0.0
    certain_wrong = certain_right[:, ::-1]
    assert theft.expected_calibration_error(certain_wrong, y) == pytest.approx(1.0)
    assert theft.brier_score(certain_wrong, y) == pytest.approx(2.0)
    # confidence 0.8 everywhere, right 3 times of 4: |0.75 - 0.8| = 0.05
    P = np.array([[0.8, 0.2], [0.2, 0.8], [0.8, 0.2], [0.8, 0.2]])
    assert theft.expected_calibration_error(P, y) == pytest.approx(0.05)
    assert theft.brier_score(P, y) == pytest.approx((3 * 0.08 + 1.28) / 4)
    # two bins: 0.6-confident and right half the time (0.1), 0.95-confident and always right (0.05)
    P2 = np.array([[0.6, 0.4], [0.6, 0.4], [0.05, 0.95], [0.05, 0.95]])
    assert theft.expected_calibration_error(P2, np.array([0, 1, 1, 1]), bins=10) == pytest.approx(0.5 * 0.1 + 0.5 * 0.05)


@pytest.mark.parametrize("call, match", [
    (lambda: theft.brier_score(np.array([[0.5, 0.5]]), np.array([0, 1])), "labels"),
    (lambda: theft.expected_calibration_error(np.array([[1.5, -0.5]]), np.array([0])), r"\[0, 1\]"),
    (lambda: theft.served(np.array([[0.5, 0.5]]), "blurred"), "output"),
    (lambda: theft.query_set("natural", 5, np.zeros((3, 1, 8, 8))), "at most 3"),
    (lambda: theft.query_set("public", 5), "X_own"),
    (lambda: theft.query_set("gan", 5), "kind"),
    (lambda: theft.claim_p_value(5, 3, 0.1), "k"),
    (lambda: theft.Prada(delta=1.5), "delta"),
    (lambda: theft.steal("answers"), "query_api"),
    (lambda: theft.steal(theft.Answers(np.zeros((2, 1, 8, 8), np.float32), np.array([0, 1]), None, "label"),
                         soft=True), "soft=False"),
], ids=["label count", "score range", "policy", "natural budget", "public needs X_own", "kind", "k > n", "delta",
        "answers type", "soft without probabilities"])
def test_validation_errors(call, match):
    with pytest.raises(ValidationError, match=match):
        call()


# --------------------------------------------------------------------------- query sets and extraction

def test_query_sets_have_the_shape_and_range_they_say(course):
    ds, model = course
    for kind in theft.QUERY_SETS:
        Q = theft.query_set(kind, 40, ds.X_val, seed=3)
        assert Q.shape == (40, 1, 8, 8) and Q.dtype == np.float32 and Q.min() >= 0 and Q.max() <= 1
        assert np.array_equal(Q, theft.query_set(kind, 40, ds.X_val, seed=3))  # seeded
    assert np.array_equal(theft.query_set("natural", 10, ds.X_val), ds.X_val[:10])
    public = theft.query_set("public", 100, ds.X_val)
    assert not np.array_equal(public, ds.X_val[:100])
    # the same digits, moved a little: mostly still read as themselves, unlike noise
    assert (training.predict(model, public) == ds.y_val[:100]).mean() > 0.6
    assert (training.predict(model, theft.query_set("noise", 100)) == ds.y_val[:100]).mean() < 0.3
    with pytest.raises(ValueError, match="without X_own"):
        theft.query_set("steps", 10)


def test_prada_flags_the_synthetic_step_thief_and_not_natural_queries(course):
    ds, model = course
    for seed in range(3):
        steps = theft.query_set("steps", 300, ds.X_val, seed=seed)
        assert np.array_equal(steps[:10], ds.X_val[:10]) and len({x.tobytes() for x in steps}) == 300
        flagged = theft.prada_stream(steps.reshape(300, -1), training.predict(model, steps))["flagged"]
        natural = theft.prada_stream(ds.X_test[:300].reshape(300, -1), training.predict(model, ds.X_test[:300]))
        assert flagged and not natural["flagged"]


def test_fidelity_is_agreement_with_the_victim(course):
    ds, model = course
    assert theft.fidelity(model, model, ds.X_test) == 1.0
    other = training.fit(training.preset("mlp", seed=1), ds.X_train, ds.y_train, ds.n_classes)
    f = theft.fidelity(other, model, ds.X_test)
    assert f == pytest.approx((training.predict(other, ds.X_test) == training.predict(model, ds.X_test)).mean())
    assert 0.9 < f < 1.0


def test_end_to_end_extraction_through_the_api_and_its_quota(course):
    ds, model = course
    issuer = serving.TokenIssuer()
    app = serving.create_app(model, issuer, serving.ApiSettings(rate="1000/second", quota_images=300))
    X = theft.query_set("natural", 300, ds.X_val)
    with serving.ApiServer(app) as server:
        with serving.client(server.url, issuer.issue("thief", ["predict", "predict:scores"])) as c:
            answers = theft.query_api(c, X, batch=64)
            with pytest.raises(RuntimeError, match="429.*quota of 300"):
                theft.query_api(c, X[:1])
        with serving.client(server.url, issuer.issue("labels", ["predict"])) as c:
            hard = theft.query_api(c, X[:100], batch=50)
    assert answers.output == "full" and answers.probabilities.shape == (300, 10)
    assert np.array_equal(answers.labels, training.predict(model, X))
    assert hard.output == "label" and hard.probabilities is None
    assert app.state.usage.used("thief") == 300 and app.state.usage.used("labels") == 100
    rows = theft.budget_curve(answers, model, ds.X_test, ds.y_test, budgets=(50, 300, 1000))
    assert [r["queries"] for r in rows] == [50, 300]  # 1000 > the answers: skipped
    assert rows[1]["fidelity"] >= 0.93 and rows[1]["fidelity"] > rows[0]["fidelity"]
    copy = theft.steal(answers, 300)
    assert copy.meta["from_cache"] and theft.fidelity(copy, model, ds.X_test) == rows[1]["fidelity"]
    hard_copy = theft.steal(hard)
    assert hard_copy.meta["tag"] == "hard" and theft.fidelity(hard_copy, model, ds.X_test) > 0.75


# --------------------------------------------------------------------------- PRADA

def test_prada_leaves_a_natural_looking_stream_and_flags_a_synthetic_one():
    rng = np.random.default_rng(0)
    honest = rng.normal(size=(300, 64))  # i.i.d. points: nearest-neighbour distances look normal
    r = theft.prada_stream(honest, np.zeros(300, dtype=np.int64), delta=0.9, min_queries=100)
    assert not r["flagged"] and r["w"] > 0.95 and len(r["distances"]) == 299
    # a synthetic thief: 10 seeds, each followed by small steps from the last query (JBDA-like)
    seeds = rng.normal(size=(10, 64))
    steps = [s + 0.05 * rng.normal(size=(30, 64)).cumsum(0) for s in seeds]
    synthetic = np.concatenate([np.concatenate([s[None], st]) for s, st in zip(seeds, steps)])
    r = theft.prada_stream(synthetic, np.zeros(len(synthetic), dtype=np.int64), delta=0.9, min_queries=100)
    assert r["flagged"] and r["flagged_at"] >= 100 and r["w"] < 0.9


def test_prada_keeps_one_growing_set_per_class():
    det = theft.Prada(min_queries=3)
    det.observe(np.zeros(4), 0)
    det.observe(np.ones(4), 1)  # a new class: no distance yet
    assert det.distances == [] and set(det.growing) == {0, 1}
    det.observe(np.full(4, 2.0), 0)
    assert det.distances == [pytest.approx(4.0)]


# --------------------------------------------------------------------------- ownership

def test_claim_p_value_on_made_up_counts():
    assert theft.claim_p_value(0, 30, 0.1) == 1.0
    assert theft.claim_p_value(30, 30, 0.1) == pytest.approx(1e-30)
    assert theft.claim_p_value(3, 30, 0.1) == pytest.approx(1 - 0.9 ** 30 - 30 * 0.1 * 0.9 ** 29 - 435 * 0.01 * 0.9 ** 28)
    # a measured chance of 0 is floored at 1 / (2 n), not taken as proof
    assert theft.claim_p_value(1, 10, 0.0) == pytest.approx(1 - 0.95 ** 10)
    assert theft.claim_p_value(10, 30, 0.3) > theft.claim_p_value(10, 30, 0.1)


def test_watermark_fingerprint_and_false_claims(course):
    ds, model = course
    Xt, yt = theft.trigger_set(30, 10, seed=7)
    assert np.array_equal(Xt, theft.trigger_set(30, 10, seed=7)[0])
    marked = theft.embed_watermark(training.preset("mlp", seed=0), ds.X_train, ds.y_train, Xt, yt, 10)
    indep = [training.fit(training.preset("mlp", seed=s), ds.X_train, ds.y_train, 10) for s in (1, 2, 3)]
    chance = theft.chance_rate(indep, Xt, yt)
    assert 0.0 <= chance < 0.3
    own = theft.verify(marked, Xt, yt, chance)
    assert own["agreement"] >= 0.9 and own["claimed"] and own["p_value"] < 1e-10
    assert theft.verify(model, Xt, yt, chance)["agreement"] < 0.4  # the unmarked model does not carry it
    assert training.accuracy(marked, ds.X_test, ds.y_test) > 0.94
    assert theft.false_claim_rate(indep, Xt, yt) == 0.0
    Xfp, yfp = theft.boundary_fingerprint(model, ds.X_val[:60])
    assert len(Xfp) >= 50 and theft.agreement(model, Xfp, yfp) == (len(Xfp), len(Xfp))  # the victim matches all
    assert np.array_equal(yfp, training.predict(model, Xfp))
    assert not np.array_equal(yfp, training.predict(model, ds.X_val[:60])[:len(yfp)])  # labels moved
    assert theft.chance_rate(indep, Xfp, yfp) < 0.6


def test_theft_panel_follows_its_controls():
    from utils.validation import ValidationError
    from utils.widgets import theft_panel

    curves = {"full": [{"queries": 50, "fidelity": 0.8, "accuracy": 0.79}, {"queries": 350, "fidelity": 0.96, "accuracy": 0.95}],
              "label": [{"queries": 50, "fidelity": 0.7, "accuracy": 0.69}, {"queries": 350, "fidelity": 0.94, "accuracy": 0.93}]}
    panel = theft_panel(curves, {"full": "not flagged", "label": "not flagged"}, value=("full", 350))
    policy, budget = panel.children[0].children
    label = panel.children[1]
    assert "full, 350 queries" in label.value and "96.0%" in label.value and "not flagged" in label.value
    image = panel.children[2].value
    budget.value = 50
    assert "80.0%" in label.value and panel.children[2].value != image
    policy.value = "label"
    assert "label, 50 queries" in label.value and "70.0%" in label.value
    with pytest.raises(ValidationError, match="budgets"):
        theft_panel({**curves, "label": curves["label"][:1]}, {"full": "", "label": ""})
    with pytest.raises(ValidationError, match="verdict"):
        theft_panel(curves, {"full": ""})
