"""Checks of labs/08_monitoring_lab.ipynb (taught in notebooks/08_monitoring.ipynb).

Each check compares the learner's code with a reference computed here, outside
the learner's sight, on cases built to tell the plausible wrong answers apart
(the tests name them: tests/test_lab_checks_08.py). Failure messages say which
case is wrong, never the expected number.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np
import pandas as pd
import scipy.stats

from utils import monitoring as mon
from utils.course.grading import NotSolved, forbid, require
from . import Checker


def _number(name: str, value: Any) -> float:
    """``value`` as a float, or NotSolved naming what it should be."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise NotSolved(f"{name} should be a number, got {value!r}") from None


def _same(name: str, value: Any, expected: float, tol: float, why: str) -> None:
    """Require a number within ``tol`` of ``expected``; the message says what is wrong, not the value."""
    v = _number(name, value)
    require(np.isfinite(v) and abs(v - expected) <= tol, f"{name} = {v:.6g} is not right: {why}")


# --------------------------------------------------------------------------- exercise 1

_KS_HELPERS_WHY = "this exercise asks you to write the KS statistic and the detector yourself"


def _ks_statistic_cases(api: Callable, P_ref: np.ndarray, X_pool: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [
        ("two normal samples of 50 and 80 (the second shifted up)", rng.normal(size=50), rng.normal(0.3, 1, size=80)),
        ("two normal samples of 70 and 60 (the second shifted down)", rng.normal(size=70), rng.normal(-0.5, 1, size=60)),
        ("two integer samples with many ties", rng.integers(0, 5, size=40).astype(float),
         rng.integers(0, 6, size=60).astype(float)),
        ("one sample of 5 against one of 200", rng.uniform(size=5), rng.uniform(0.2, 1.2, size=200)),
        ("column 3 of the model's outputs, reference against 150 pool images", P_ref[:, 3], api(X_pool[:150])[:, 3]),
    ]


def _ks_test_cases(api: Callable, P_ref: np.ndarray, X_pool: np.ndarray, y_pool: np.ndarray,
                   window: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    ref3, cur3 = rng.normal(size=(120, 3)), rng.normal(size=(100, 3))
    cur3[:, 1] += 0.5
    rng = np.random.default_rng(5)
    ref5, cur5 = rng.dirichlet(np.ones(5), size=80), rng.dirichlet(np.ones(5), size=70)
    rng = np.random.default_rng(7)
    ref5b, cur5b = rng.dirichlet(np.ones(5), size=80), rng.dirichlet(np.ones(5), size=70)
    same = np.round(P_ref[:, :4], 3)
    clean, _ = mon.sample_window(X_pool, y_pool, window, seed=7)
    noisy, _ = mon.sample_window(X_pool, y_pool, window, "noise", 0.15, seed=7)
    return [
        ("a no-drift window of the API", P_ref, api(clean)),
        ("a noise σ=0.15 window of the API", P_ref, api(noisy)),
        ("3 outputs, one of them shifted", ref3, cur3),
        ("5 softmax-like outputs from the same distribution", ref5, cur5),
        ("5 softmax-like outputs from the same distribution, another draw", ref5b, cur5b),
        ("4 outputs, the current window a shuffled copy of the reference", same, same[::-1].copy()),
    ]


def _exercise_1(my_ks_statistic: Callable, my_ks_test: Callable, *, api: Callable, P_ref: np.ndarray,
                X_pool: np.ndarray, y_pool: np.ndarray, window: int, alpha: float) -> None:
    """The KS statistic against scipy (without calling a library KS), and the Bonferroni KS test against
    mon.ks_test (without calling it), on samples and windows that tell the usual slips apart."""
    cases = _ks_statistic_cases(api, P_ref, X_pool)
    refs = [float(scipy.stats.ks_2samp(a, b).statistic) for _, a, b in cases]
    with forbid(mon.ks_statistic, mon.ks_test, scipy.stats.ks_2samp, scipy.stats.kstest,
                why="my_ks_statistic should compute the gap between the ECDFs itself"):
        for (name, a, b), ref in zip(cases, refs):
            _same("my_ks_statistic", my_ks_statistic(a.copy(), b.copy()), ref, 1e-9,
                  f"it is not the largest gap between the two empirical CDFs on {name}")
    cases = _ks_test_cases(api, P_ref, X_pool, y_pool, window)
    refs = [mon.ks_test(ref, cur, alpha) for _, ref, cur in cases]
    with forbid(mon.ks_statistic, mon.ks_test, why=_KS_HELPERS_WHY):
        outs = [my_ks_test(ref.copy(), cur.copy(), alpha) for _, ref, cur in cases]
    for (name, _, _), out, expected in zip(cases, outs, refs):
        require(isinstance(out, tuple) and len(out) == 3,
                f"my_ks_test should return a tuple (largest D, corrected p, drift?), got {out!r}")
        d, p, flagged = out
        _same(f"the largest D on {name}", d, expected.statistic, 1e-9,
              "it is not the largest of the per-output KS statistics")
        _same(f"the corrected p-value on {name}", p, expected.p_value, 1e-9,
              "it is not the Bonferroni-corrected smallest p-value of the per-output tests")
        require(isinstance(flagged, (bool, np.bool_)), f"the drift decision should be a bool, got {flagged!r}")
        require(bool(flagged) == expected.drift,
                f"on {name} the drift decision ({bool(flagged)}) does not follow from the corrected p-value and alpha")


# --------------------------------------------------------------------------- exercise 2


def _calibration(max_d: Callable, X_pool: np.ndarray, y_pool: np.ndarray, w: int, budget: float) -> tuple[float, float]:
    """(threshold, power) of one window length, as the exercise describes."""
    null = np.array([max_d(mon.sample_window(X_pool, y_pool, w, seed=1000 + k)[0]) for k in range(100)])
    threshold = float(np.quantile(null, 1 - budget, method="higher"))
    shifted = np.array([max_d(mon.sample_window(X_pool, y_pool, w, "noise", 0.1, seed=2000 + k)[0])
                        for k in range(100)])
    return threshold, float(np.mean(shifted > threshold))


def _calibrate_cases(budget: float) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """Made-up statistics, on a grid as KS statistics are, with shifted values exactly at the threshold:
    (what, null, shifted, budget)."""
    rng = np.random.default_rng(4)
    grid = rng.integers(10, 60, size=100) / 200
    at = np.quantile(grid, 1 - budget, method="higher")
    return [
        ("100 null values on a grid of 1/200, shifted values at and around the threshold", grid,
         np.concatenate([np.full(7, at), at + rng.integers(-5, 6, size=43) / 200]), budget),
        ("60 null values 1 … 60, 40 shifted ones 50 … 89", np.arange(1.0, 61.0), np.arange(50.0, 90.0), 0.05),
        ("every shifted value equal to the threshold", grid, np.full(30, at), budget),
        ("20 distinct null values, a 10% budget", rng.permutation(np.arange(20) / 40), np.arange(10, 30) / 40, 0.1),
    ]


def _exercise_2(calibrate: Callable, chosen_window: Any, chosen_threshold: Any, chosen_power: Any, *,
                max_d: Callable, X_pool: np.ndarray, y_pool: np.ndarray, candidates: tuple, budget: float,
                target: float) -> None:
    """calibrate on made-up statistics with ties at the threshold (where "exceed" and "reach" differ),
    then the threshold and power of the chosen window by the same simulation, then the window itself."""
    require(callable(calibrate), "calibrate should be a function (null, shifted, budget) -> (threshold, power)")
    for what, null, shifted, b in _calibrate_cases(budget):
        out = calibrate(null.copy(), shifted.copy(), b)
        require(isinstance(out, tuple) and len(out) == 2,
                f"calibrate should return a tuple (threshold, power), got {out!r}")
        threshold = float(np.quantile(null, 1 - b, method="higher"))
        _same(f"the threshold of calibrate on {what}", out[0], threshold, 1e-12,
              f"it is not the {1 - b:.0%} quantile (method='higher') of the null values")
        _same(f"the power of calibrate on {what}", out[1], float(np.mean(shifted > threshold)), 1e-12,
              "it is not the share of the shifted values that exceed the threshold")
    require(chosen_window is not None and chosen_threshold is not None and chosen_power is not None,
            "set chosen_window, chosen_threshold and chosen_power")
    require(chosen_window in candidates, f"chosen_window should be one of {candidates}, got {chosen_window!r}")
    table = {}
    for w in candidates:
        table[w] = _calibration(max_d, X_pool, y_pool, w, budget)
        if table[w][1] >= target:
            break
    right = w  # the first that reaches the target, else the longest
    if chosen_window not in table:
        table[chosen_window] = _calibration(max_d, X_pool, y_pool, chosen_window, budget)
    threshold, power = table[chosen_window]
    _same("chosen_threshold", chosen_threshold, threshold, 1e-9,
          f"it is not the {1 - budget:.0%} quantile (method='higher') of max_d over the 100 no-drift windows "
          f"of {chosen_window} requests")
    _same("chosen_power", chosen_power, power, 1e-9,
          f"it is not the share of the 100 noisy windows of {chosen_window} requests whose max_d exceeds the threshold")
    require(chosen_window == right, f"window {chosen_window} is not the first candidate whose power reaches "
                                    f"{target} (or, if none does, the longest)")


# --------------------------------------------------------------------------- exercise 3

#: The check's own logs: (what it shows, {client: (requests, novel requests)}), the rest of the
#: ``n_honest`` clients each sending ``honest`` requests with at most one novel. Built so that the
#: binomial test with Bonferroni over the clients gives another answer than: no correction,
#: a correction by the number of requests or by a fixed 20 clients, a two-sided test, a share or
#: count cut-off, the busiest or most novel client.
_LOGS = [
    ("a thief and an honest client with 3 novel requests in 30", 12, (25, 60), {"thief": (40, 12), "odd": (30, 3)}),
    ("a careful thief and a busy honest client with 2% novel requests", 30, (20, 50),
     {"thief": (40, 5), "busy": (300, 5)}),
    ("three thieves among few clients", 8, (30, 70),
     {"thief": (60, 8), "thief2": (45, 7), "thief3": (40, 4), "odd": (12, 2)}),
    ("no thief at all", 20, (20, 60), {"odd": (50, 2), "busy": (260, 3), "silent": (900, 0)}),
    ("a small thief among many clients", 30, (15, 40), {"thief": (12, 3), "odd": (35, 4)}),
]


def _synthetic_log(number: int, n_honest: int, sizes: tuple[int, int], special: dict, threshold: float):
    """One request log (index, time, client, novelty) of the check's, with a fixed seed."""
    rng = np.random.default_rng(800 + number)
    counts = [(int(rng.integers(*sizes)), int(rng.random() < 0.3)) for _ in range(n_honest)]
    counts += list(special.values())
    ids = [f"c{k:02d}" for k in rng.permutation(100)[:len(counts)]]
    client, novelty = [], []
    for cid, (n, k) in zip(ids, counts):
        client += [cid] * n
        novelty += list(threshold * rng.uniform(1.05, 2.5, size=k)) + list(threshold * rng.uniform(0.2, 0.95, size=n - k))
    order = rng.permutation(len(client))
    n = len(client)
    return pd.DataFrame({"index": 1400 + np.arange(n), "time": 700 + np.cumsum(rng.exponential(0.5, size=n)),
                         "client": np.array(client)[order], "novelty": np.array(novelty)[order]})


def _flagged(log: pd.DataFrame, threshold: float) -> set:
    """The exercise's answer: one-sided binomial test per client, Bonferroni over the clients, below 0.01."""
    groups = log.groupby("client")
    out = set()
    for client, g in groups:
        k = int((g["novelty"] > threshold).sum())
        if scipy.stats.binomtest(k, len(g), 0.01, alternative="greater").pvalue * groups.ngroups < 0.01:
            out.add(client)
    return out


def _exercise_3(find_extraction_clients: Callable, *, log_a, truth_a, log_b, truth_b, novel_threshold: float) -> None:
    """The flagged clients of both lab logs are exactly the extraction clients of the simulation, and on
    the check's own logs exactly those the test flags."""
    def found_in(log):
        found = find_extraction_clients(log.copy())
        require(isinstance(found, (set, frozenset)), f"return a set of client ids, got {type(found).__name__}")
        return set(found)

    for name, log, truth in [("log A", log_a, truth_a), ("log B", log_b, truth_b)]:
        thieves = set(log["client"][truth == "extraction"])
        found = found_in(log)
        missed, accused = thieves - found, found - thieves
        require(not missed, f"{name}: the thief {sorted(missed)} was not found")
        require(not accused, f"{name}: honest clients {sorted(accused)} were accused")
    for number, (what, n_honest, sizes, special) in enumerate(_LOGS, 1):
        log = _synthetic_log(number, n_honest, sizes, special, novel_threshold)
        expected, found = _flagged(log, novel_threshold), found_in(log)
        where = f"on the check's log {number} of {len(_LOGS)} ({what}; {log['client'].nunique()} clients)"

        def describe(c):
            g = log[log["client"] == c]
            return f"{c} ({len(g)} requests, {int((g['novelty'] > novel_threshold).sum())} novel)"
        missed, accused = sorted(expected - found), sorted(found - expected)
        require(not missed, f"{where}: the test flags {', '.join(map(describe, missed))}, your function does not")
        require(not accused, f"{where}: your function flags {', '.join(map(describe, accused))}, the test does not")
    rates = log_a.groupby("client").size()
    thief = next(iter(set(log_a["client"][truth_a == "extraction"])))
    print(f"the thief sent {rates[thief]} requests; the busiest client {rates.max()}")


# --------------------------------------------------------------------------- exercise 4


def _alert_cases(api, P_ref, X_pool, y_pool, window, alpha) -> list[tuple[str, mon.DriftResult]]:
    windows = [(f"the {kind} window", mon.sample_window(X_pool, y_pool, window, kind, level, seed=3)[0])
               for kind, level in [("none", 0), ("noise", 0.12), ("rotation", 20.0)]]
    cases = [(name, mon.ks_test(P_ref, api(Xw), alpha)) for name, Xw in windows]
    R = mon.DriftResult
    cases += [
        ("a made-up result, p = 0.003 with threshold 0.05", R("ks", 0.2, 0.003, 0.05, True, {"column": 4})),
        ("a made-up result, p exactly at the threshold 0.05", R("ks", 0.11, 0.05, 0.05, False, {"column": 2})),
        ("a made-up result, p exactly at threshold / 100 (threshold 0.05)", R("ks", 0.3, 0.0005, 0.05, True, {"column": 7})),
        ("a made-up result, p exactly at threshold / 100 (threshold 0.01)", R("ks", 0.3, 0.0001, 0.01, True, {"column": 0})),
        ("a made-up result, p = 0.0008 with threshold 0.1", R("ks", 0.25, 0.0008, 0.1, True, {"column": 9})),
        ("a made-up result, p = 0.03 with threshold 0.02", R("ks", 0.09, 0.03, 0.02, False, {"column": 5})),
        ("a made-up result of another detector, p = 0", R("ks-embedding", 0.5, 0.0, 0.05, True, {"column": 1})),
        ("a made-up result, p = 1", R("ks", 0.0, 1.0, 0.05, False, {"column": 0})),
    ]
    return cases


def _exercise_4(make_alert: Callable, *, api: Callable, P_ref: np.ndarray, X_pool: np.ndarray,
                y_pool: np.ndarray, window: int, alpha: float) -> None:
    """The alerts of drift results (three windows and made-up ones at the severity boundaries) against the
    fields, severity and evidence they should carry."""
    for k, (name, r) in enumerate(_alert_cases(api, P_ref, X_pool, y_pool, window, alpha)):
        start, end, time = 100 * k, 100 * k + window, 50.0 * k + 0.5
        a = make_alert(r, start, end, time)
        require(isinstance(a, mon.Alert), f"make_alert should return a mon.Alert, got {type(a).__name__}")
        line = json.loads(a.to_json())
        where = f"the alert of {name} (requests {start} … {end}, last at time {time})"
        for key, value, why in [("index", end, "the window's end"), ("time", time, "the time given"),
                                ("detector", r.detector, "the result's detector"),
                                ("threshold", r.threshold, "the result's threshold")]:
            require(line[key] == value, f"{where}: {key} = {line[key]!r} is not {why}")
        for key in ("statistic", "p_value"):  # JSON keeps 6 digits
            _same(f"{key} of {where}", line[key], getattr(r, key), 1e-5 * abs(getattr(r, key)),
                  f"it is not the result's {key}")
        require(line["severity"] == mon.severity(r.p_value, r.threshold),
                f"{where}: severity {line['severity']!r} does not follow the rule for p = {r.p_value:g} and "
                f"threshold {r.threshold:g}")
        require(line["evidence"] == {"window": [start, end], "column": r.details["column"]},
                f"{where}: evidence should be the window [start, end] and the column, got {line['evidence']}")


# --------------------------------------------------------------------------- exercises 5 and 6

#: Accounts with fewer requests than this in a log are "small" (exercise 6).
FEW = 10


def _stream_log(X_pool, y_pool, X_ref, stream_seed: int, extraction: float):
    """A log of the lab's kind (the last 1000 requests of a simulated stream) and its truth."""
    segments = [mon.Segment("normal", 400), mon.Segment("review", 1000, extraction=extraction)]
    stream = mon.simulate_stream(X_pool, y_pool, segments, seed=stream_seed)
    log = stream.frame().iloc[-1000:].copy()
    log["novelty"] = mon.novelty_score(stream.X[-1000:], X_ref)
    return log.drop(columns=["source", "segment", "drift", "level", "label"]), stream.source[-1000:]


def _even_deal(log: pd.DataFrame, thief: str, k: int, threshold: float) -> pd.DataFrame:
    """The thief's requests dealt in turn to k new ids, its novel requests first (so that each id gets
    as many novel requests as any other, give or take one, and as many requests)."""
    out = log.copy()
    rows = out.index[out["client"] == thief]
    novel = (out.loc[rows, "novelty"] > threshold).to_numpy()
    order = list(rows[novel]) + list(rows[~novel])
    ids = np.array([f"{thief}-s{i % k}" for i in range(len(order))], dtype=object)
    out.loc[order, "client"] = ids
    return out


def _fewest_even(log: pd.DataFrame, thief: str, threshold: float) -> int:
    """The fewest ids an even deal needs for the per-client test of exercise 3 to flag none of them."""
    for k in range(1, int((log["client"] == thief).sum()) + 1):
        ids = {f"{thief}-s{i}" for i in range(k)}
        if not _flagged(_even_deal(log, thief, k, threshold), threshold) & ids:
            return k
    return k


def _sybil_logs(X_pool, y_pool, X_ref, seed: int):
    """The check's attacked logs for exercises 5 and 6: (name, log, thief id), three stream seeds."""
    out = []
    for s in (21, 22, 23):
        log, truth = _stream_log(X_pool, y_pool, X_ref, seed + s, extraction=0.04)
        thief = str(log["client"][truth == "extraction"].iloc[0])
        out.append((f"the check's log with stream seed {seed + s}", log, thief))
    return out


def _exercise_5(sybil_attack: Callable, *, log_a, truth_a, X_pool, y_pool, X_ref, novel_threshold: float,
                seed: int) -> None:
    """On the lab's log A and three logs of the check's: the thief's requests, and only they, move to new
    ids; the per-client test of exercise 3 (the check's own) flags none of them; and the attack uses no
    more ids than an even deal needs."""
    thief_a = str(log_a["client"][truth_a == "extraction"].iloc[0])
    cases = [("log A", log_a, thief_a)] + _sybil_logs(X_pool, y_pool, X_ref, seed)
    spread = []
    for name, log, thief in cases:
        out = sybil_attack(log.copy(), thief)
        require(isinstance(out, pd.DataFrame), f"sybil_attack should return a DataFrame, got {type(out).__name__}")
        require(list(out.columns) == list(log.columns) and len(out) == len(log) and out.index.equals(log.index),
                f"{name}: keep every request, with the log's columns and index (the thief still needs all its answers)")
        for col in log.columns.drop("client"):
            require(out[col].equals(log[col]), f"{name}: only the client column may change, {col!r} did")
        mine = (log["client"] == thief).to_numpy()
        require((out["client"][~mine] == log["client"][~mine]).all(), f"{name}: other clients' requests changed hands")
        new = set(out["client"][mine])
        require(thief not in new, f"{name}: the thief's own id {thief} still sends requests")
        reused = sorted(new & set(log["client"]))
        require(not reused, f"{name}: the Sybils must be new accounts, but {reused} already were clients of the log")
        caught = sorted(_flagged(out, novel_threshold) & new)
        require(not caught, f"{name}: the per-client test still flags {len(caught)} of your {len(new)} ids")
        budget = _fewest_even(log, thief, novel_threshold)
        require(len(new) <= budget, f"{name}: {len(new)} ids escape the test, but fewer do too")
        spread.append((name, int(mine.sum()), len(new), budget))
    name, n, k, budget = spread[0]
    print(f"{name}: the thief's {n} requests spread over {k} new ids (an even deal needs {budget})")


def _group_flagged(log: pd.DataFrame, threshold: float) -> set:
    """The exercise's group test: small accounts (< FEW requests) against the rest, Fisher's exact test
    (one-sided), below 0.01; then the small accounts with a novel request."""
    novel = log["novelty"] > threshold
    agg = novel.groupby(log["client"]).agg(["sum", "size"])
    small = agg["size"] < FEW
    if not small.any() or small.all():
        return set()
    a, b = agg[small], agg[~small]
    table = [[a["sum"].sum(), a["size"].sum() - a["sum"].sum()], [b["sum"].sum(), b["size"].sum() - b["sum"].sum()]]
    if scipy.stats.fisher_exact(table, alternative="greater").pvalue >= 0.01:
        return set()
    return set(a.index[a["sum"] > 0])


#: The check's own logs for exercise 6, built with :func:`_synthetic_log`: (what, honest clients, their
#: sizes, {client: (requests, novel)}). They tell the group test apart from: no group (every small
#: account with a novel request), a test against the expected 1% instead of the rest of the log, a
#: two-sided test, naming every small account, "small" as at most FEW requests, a group of the clients
#: with a novel request.
_GROUP_LOGS = [
    ("Sybils and a small honest account without a novel request", 20, (20, 60),
     {**{f"s{i}": (4, 2) for i in range(10)}, "quiet": (6, 0)}),
    ("small honest accounts among clients with many novel requests", 15, (20, 40),
     {**{f"n{i}": (40, 3) for i in range(8)}, **{f"q{i}": (8, 1) for i in range(5)}}),
    ("small accounts with fewer novel requests than the noisy clients", 12, (20, 40),
     {**{f"n{i}": (40, 6) for i in range(8)}, **{f"q{i}": (9, int(i == 0)) for i in range(20)}}),
    ("Sybils of exactly FEW requests, and smaller ones", 20, (20, 60),
     {**{f"t{i}": (FEW, 3) for i in range(5)}, **{f"s{i}": (5, 2) for i in range(4)}}),
    ("one small account with a novel request, nothing else", 20, (20, 60), {"odd": (5, 1)}),
]


def _exercise_6(find_sybils: Callable, *, X_pool, y_pool, X_ref, novel_threshold: float, seed: int) -> None:
    """On attacked logs (the thief split by an even deal) the test names exactly the Sybils; on honest logs
    nobody; on the check's own logs exactly those the group test names."""
    def found_in(log):
        found = find_sybils(log.copy())
        require(isinstance(found, (set, frozenset)), f"return a set of client ids, got {type(found).__name__}")
        return set(found)

    for name, log, thief in _sybil_logs(X_pool, y_pool, X_ref, seed):
        k = _fewest_even(log, thief, novel_threshold)
        attacked = _even_deal(log, thief, k, novel_threshold)
        sybils = set(attacked["client"]) - set(log["client"])
        found = found_in(attacked)
        require(not sybils - found, f"{name}, split over {k} Sybils: {len(sybils - found)} of them were not found")
        require(not found - sybils, f"{name}, split over {k} Sybils: {len(found - sybils)} honest clients were accused")
    for s in (24, 25):
        log, _ = _stream_log(X_pool, y_pool, X_ref, seed + s, extraction=0.0)
        accused = found_in(log)
        require(not accused,
                f"the check's honest log with stream seed {seed + s}: {len(accused)} honest clients were accused")
    for number, (what, n_honest, sizes, special) in enumerate(_GROUP_LOGS, 1):
        log = _synthetic_log(60 + number, n_honest, sizes, special, novel_threshold)
        expected, found = _group_flagged(log, novel_threshold), found_in(log)
        where = f"on the check's log {number} of {len(_GROUP_LOGS)} ({what})"
        require(not expected - found,
                f"{where}: the group test names {len(expected - found)} clients your function does not")
        require(not found - expected,
                f"{where}: your function names {len(found - expected)} clients the group test does not")


check = Checker("lab08", {
    1: ("KS detector", _exercise_1),
    2: ("window for a budget", _exercise_2),
    3: ("extraction client", _exercise_3),
    4: ("structured alert", _exercise_4),
    5: ("break the defense with Sybil accounts", _exercise_5),
    6: ("repair with a group test", _exercise_6),
})
