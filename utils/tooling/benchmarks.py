"""Benchmarks of the course's attacks against torchattacks (for 04_adversarial_examples).

Run as ``python -m utils.tooling.benchmarks [--repeats N] [--no-slow] [--strict]``.

For the MLP and the CNN of the course (digits, seed 0) it runs
:func:`utils.attacks.evasion.fgsm` and :func:`utils.attacks.evasion.pgd` and torchattacks'
``FGSM`` and ``PGD`` at identical settings (ε = 0.1, 10 steps of 0.025, no
random start) on the 360 test digits, and reports

- the robust accuracy of each and their difference (must be within 0.01),
- the median time of each over ``--repeats`` interleaved runs and the ratio
  utils / torchattacks (the course promises at most 1.2×).

With the slow attacks (default; ``--no-slow`` skips them) it also times one
run of C&W and Square on 200 test digits and of AutoAttack on 40 and on 360, to size them.
The table is printed and written to ``build/bench.json``. ``--strict`` exits
with status 1 if a cross-check or a time ratio misses its bound.

With ``--api`` (default; ``--no-api`` skips it) it also measures the model API of
07_secure_deployment (:func:`bench_api`): requests/s and p50/p99 latency on loopback for
single images and batches of 64, every defense on and every defense off.
``--only-api`` runs that alone and updates the ``api`` entry of an existing bench.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable


from utils.paths import ROOT

OUT = ROOT / "build" / "bench.json"

#: The bounds the course promises for utils' attacks against torchattacks.
MAX_ACCURACY_GAP = 0.01
MAX_TIME_RATIO = 1.2


def time_calls(fns: dict[str, Callable[[], object]], repeats: int = 7,
               min_seconds: float = 0.05) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds.

    Each round calls every function (in turn, so that background load hits them
    alike) enough times to last about ``min_seconds``; the median over
    ``repeats`` rounds is reported per call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    number = {}
    for name, fn in fns.items():  # warm-up, and how many calls fill min_seconds
        t0 = time.perf_counter()
        fn()
        number[name] = max(1, int(min_seconds / max(time.perf_counter() - t0, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(number[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / number[name])
    return {name: statistics.median(ts) for name, ts in times.items()}


def cross_check(model, x, y, attack: str, eps: float = 0.1, steps: int = 10, repeats: int = 7,
                min_seconds: float = 0.05) -> dict:
    """utils' FGSM or PGD against torchattacks' at identical settings: accuracies and times."""
    import torch
    import torchattacks

    from utils.attacks import evasion as attacks

    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y).long()
    alpha = 2.5 * eps / steps
    if attack == "FGSM":
        ours = lambda: attacks.fgsm(model, x, y, eps)  # noqa: E731
        ta = torchattacks.FGSM(model, eps=eps)
        settings = f"eps={eps:g}"
    elif attack == "PGD":
        ours = lambda: attacks.pgd(model, x, y, eps, alpha=alpha, steps=steps, random_start=False)  # noqa: E731
        ta = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)
        settings = f"eps={eps:g}, alpha={alpha:g}, steps={steps}, no random start"
    else:
        raise ValueError(f"cross_check compares 'FGSM' or 'PGD', got {attack!r}")
    theirs = lambda: ta(x, y)  # noqa: E731
    acc_ours = attacks.robust_accuracy(model, ours(), y)
    acc_theirs = attacks.robust_accuracy(model, theirs(), y)
    t = time_calls({"utils": ours, "torchattacks": theirs}, repeats, min_seconds)
    return {
        "attack": attack, "settings": settings, "n": len(x),
        "robust_acc_utils": round(acc_ours, 4), "robust_acc_torchattacks": round(acc_theirs, 4),
        "acc_gap": round(abs(acc_ours - acc_theirs), 4),
        "seconds_utils": t["utils"], "seconds_torchattacks": t["torchattacks"],
        "time_ratio": round(t["utils"] / t["torchattacks"], 3),
    }


def size_slow_attacks(model, x, y, eps: float = 0.1) -> list[dict]:
    """One timed run of each slow torchattacks attack, to size the subsets lesson 04 uses."""
    from utils.attacks import evasion as attacks

    plans = [("CW", 200, {"c": 1.0, "lr": 0.1, "steps": 100}), ("Square", 200, {"n_queries": 500}),
             ("AutoAttack", 40, {}), ("AutoAttack", 360, {})]
    rows = []
    for name, n, kwargs in plans:
        t0 = time.perf_counter()
        x_adv = attacks.run_torchattacks(name, model, x[:n], y[:n], eps, seed=0, **kwargs)
        seconds = time.perf_counter() - t0
        rows.append({"attack": name, "n": n, "settings": ", ".join(f"{k}={v}" for k, v in kwargs.items()),
                     "robust_acc": round(attacks.robust_accuracy(model, x_adv, y[:n]), 4),
                     "seconds": round(seconds, 2)})
    return rows


def run(repeats: int = 7, slow: bool = True, seed: int = 0) -> dict:
    """All benchmarks on the course's digits models; returns what ``main`` writes."""
    import utils
    from utils import data, training

    import torch
    import torchattacks

    utils.setup(seed, plots=False)
    ds = data.load("digits", seed=seed)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
              "repeats": repeats, "cross_checks": [], "slow_attacks": []}
    result["torchattacks"] = torchattacks.__version__
    for arch in ("mlp", "cnn"):
        model = training.fit(training.preset(arch, seed=seed), ds.X_train, ds.y_train, ds.n_classes)
        for attack in ("FGSM", "PGD"):
            row = cross_check(model, ds.X_test, ds.y_test, attack, repeats=repeats)
            result["cross_checks"].append({"model": arch, **row})
        if slow and arch == "mlp":
            x, y = torch.as_tensor(ds.X_test), torch.as_tensor(ds.y_test)
            result["slow_attacks"] = [{"model": arch, **r} for r in size_slow_attacks(model, x, y)]
    return result


#: Every defense :class:`utils.serving.ApiSettings` can switch off.
DEFENSES = ("auth", "rate_limit", "size_limit", "validation", "batch_limit", "quota", "output_policy")


def _percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear between order statistics."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def bench_api(requests: int = 300, batches: tuple[int, ...] = (1, 64), seed: int = 0, warmup: int = 10) -> dict:
    """Throughput and latency of the model API (07_secure_deployment) on loopback.

    The course's digits MLP is served by :class:`utils.serving.ApiServer` twice: with every
    defense on (``ApiSettings``, its rate limit raised to 10^6/second and its quota to 10^9
    images so that neither refuses the benchmark while both still run their checks), and
    with every defense off (``.without(*DEFENSES)``). For each batch size, ``requests``
    sequential requests (after ``warmup``) go through one keep-alive ``httpx.Client``, the
    bodies serialized beforehand; every answer must be 200. Returns the ``api`` record of
    bench.json.
    """
    import httpx

    import utils
    from utils import data, serving, training

    if requests < 2 or warmup < 0:
        raise ValueError(f"bench_api: requests must be >= 2 and warmup >= 0, got {requests} and {warmup}")
    utils.setup(seed, plots=False)
    ds = data.load("digits", seed=seed)
    model = training.fit(training.preset("mlp", seed=seed), ds.X_train, ds.y_train, ds.n_classes).eval()
    shape = tuple(ds.X_test.shape[1:])
    on = serving.ApiSettings(rate="1000000/second", quota_images=10**9)
    settings = {"on": on, "off": on.without(*DEFENSES)}
    bodies = {b: json.dumps({"images": ds.X_test[:b].tolist()}).encode() for b in batches}
    if max(batches) > on.max_batch or max(len(x) for x in bodies.values()) > on.max_body_bytes:
        raise ValueError(f"bench_api: batches {batches} exceed the API's limits (max_batch {on.max_batch}, "
                         f"max_body_bytes {on.max_body_bytes})")
    cases = []
    for defenses, s in settings.items():
        issuer = serving.TokenIssuer()
        app = serving.create_app(model, issuer, s, input_shape=shape)
        headers = {"Authorization": f"Bearer {issuer.issue('bench', ['predict', 'predict:scores'], ttl_s=3600)}",
                   "Content-Type": "application/json"}
        with serving.ApiServer(app) as server, httpx.Client(base_url=server.url, trust_env=False,
                                                            timeout=30) as client:
            for b in batches:
                for _ in range(warmup):
                    client.post("/predict", content=bodies[b], headers=headers).raise_for_status()
                latencies = []
                t_start = time.perf_counter()
                for _ in range(requests):
                    t0 = time.perf_counter()
                    r = client.post("/predict", content=bodies[b], headers=headers)
                    latencies.append(time.perf_counter() - t0)
                    if r.status_code != 200:
                        raise RuntimeError(f"bench_api: defenses {defenses}, batch {b}: status {r.status_code} "
                                           f"({r.text[:200]})")
                wall = time.perf_counter() - t_start
                cases.append({"defenses": defenses, "batch": b, "requests": requests,
                              "req_per_s": round(requests / wall, 1), "images_per_s": round(requests * b / wall, 1),
                              "p50_ms": round(1e3 * _percentile(latencies, 0.50), 3),
                              "p99_ms": round(1e3 * _percentile(latencies, 0.99), 3),
                              "body_bytes": len(bodies[b])})
        if defenses == "on":
            assert len(app.state.audit.entries) == len(batches) * (requests + warmup)
    return {"model": "mlp (digits)", "transport": "loopback HTTP/1.1, one keep-alive httpx.Client, sequential",
            "settings_on": f"ApiSettings(rate={on.rate!r}, quota_images={on.quota_images}), every defense on",
            "settings_off": f"ApiSettings().without({', '.join(DEFENSES)})",
            "requests": requests, "warmup": warmup, "cases": cases}


def format_api_table(api: dict) -> str:
    """The API benchmark as a Markdown table."""
    lines = [f"Model API ({api['model']}; {api['transport']}; {api['requests']} requests a case after "
             f"{api['warmup']} warm-up)", "",
             "| defenses | batch | requests/s | images/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for c in api["cases"]:
        lines.append(f"| {c['defenses']} | {c['batch']} | {c['req_per_s']:.0f} | {c['images_per_s']:.0f} "
                     f"| {c['p50_ms']:.2f} | {c['p99_ms']:.2f} |")
    by = {(c["defenses"], c["batch"]): c for c in api["cases"]}
    for b in sorted({c["batch"] for c in api["cases"]}):
        if ("on", b) in by and ("off", b) in by:
            lines.append(f"\nBatch {b}: the defenses add {by['on', b]['p50_ms'] - by['off', b]['p50_ms']:+.2f} ms "
                         f"to the median request.")
    return "\n".join(lines)


def verdicts(result: dict) -> list[str]:
    """The bounds a result misses (empty when all hold)."""
    out = []
    for r in result["cross_checks"]:
        if r["acc_gap"] > MAX_ACCURACY_GAP:
            out.append(f"{r['model']} {r['attack']}: robust accuracy gap {r['acc_gap']} > {MAX_ACCURACY_GAP}")
        if r["time_ratio"] > MAX_TIME_RATIO:
            out.append(f"{r['model']} {r['attack']}: time ratio {r['time_ratio']} > {MAX_TIME_RATIO}")
    return out


def format_table(result: dict) -> str:
    """The benchmark as Markdown tables."""
    lines = [f"torch {result['torch']}, torchattacks {result['torchattacks']}, {result['threads']} thread(s), "
             f"median of {result['repeats']} interleaved rounds", "",
             "| model | attack | settings | n | robust acc utils | robust acc torchattacks | gap "
             "| ms utils | ms torchattacks | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["cross_checks"]:
        lines.append(f"| {r['model']} | {r['attack']} | {r['settings']} | {r['n']} | {r['robust_acc_utils']:.4f} "
                     f"| {r['robust_acc_torchattacks']:.4f} | {r['acc_gap']:.4f} | {1e3 * r['seconds_utils']:.2f} "
                     f"| {1e3 * r['seconds_torchattacks']:.2f} | {r['time_ratio']:.2f}× |")
    if result["slow_attacks"]:
        lines += ["", "| model | attack (torchattacks) | settings | n | robust acc at ε=0.1 | s |",
                  "|---|---|---|---|---|---|"]
        for r in result["slow_attacks"]:
            lines.append(f"| {r['model']} | {r['attack']} | {r['settings'] or 'defaults, seed=0'} | {r['n']} "
                         f"| {r['robust_acc']:.3f} | {r['seconds']:.2f} |")
    misses = verdicts(result)
    if result.get("api"):
        lines += ["", format_api_table(result["api"])]
    lines += ["", "All bounds hold (accuracy gap <= 0.01, time ratio <= 1.2×)." if not misses
              else "Bounds missed: " + "; ".join(misses)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tooling.benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds (median reported)")
    parser.add_argument("--no-slow", action="store_true", help="skip sizing C&W, Square and AutoAttack")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a bound is missed")
    parser.add_argument("--api", action=argparse.BooleanOptionalAction, default=True,
                        help="also benchmark the model API of 07_secure_deployment (default on)")
    parser.add_argument("--only-api", action="store_true",
                        help="benchmark only the API; keep the rest of an existing bench.json")
    parser.add_argument("--api-requests", type=int, default=300, help="requests per API case (default 300)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON (default build/bench.json)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.api_requests < 2:
        parser.error(f"--api-requests must be >= 2, got {args.api_requests}")
    if args.only_api:
        result = json.loads(args.out.read_text()) if args.out.is_file() else {}
        result["api"] = bench_api(requests=args.api_requests)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(format_api_table(result["api"]))
        print(f"\nwrote {args.out}")
        return 0
    result = run(repeats=args.repeats, slow=not args.no_slow)
    if args.api:
        result["api"] = bench_api(requests=args.api_requests)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(format_table(result))
    print(f"\nwrote {args.out}")
    return 1 if args.strict and verdicts(result) else 0


if __name__ == "__main__":
    sys.exit(main())
