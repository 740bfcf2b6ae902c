"""The release gate and the trail verifier on the command line, for CI (taught in 09_governance_and_audit).

    python -m utils.governance gate --evidence E.json --trail T.jsonl --public-key KEY \\
        [--head T.jsonl.head.json] [--rules rules.json] [--publisher-key publisher.pub.pem] \\
        [--record --key-seed N]
    python -m utils.governance verify --trail T.jsonl --public-key KEY [--head H.json]
    python -m utils.governance evidence --trail T.jsonl --public-key KEY --weights W \\
        --name NAME --version V [--signature S] [--mlbom M] [--publisher-key P] --out E.json

Exit status: 0 promoted / verifies / written, 1 blocked / does not verify, 2 bad input (the
message names what is wrong). Nothing here imports torch unless a signature or an ML-BOM is
checked.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_BLOCKED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """Bad command-line input: exit 2 with this message (taught in 09_governance_and_audit)."""


def read_public_key(text: str):
    """An Ed25519 public key from 64 hex digits or a file holding them (or a head file from
    ``AuditTrail.write_head``, whose ``public_key`` is used) (taught in 09_governance_and_audit)."""
    from utils.governance import trail

    p = Path(text)
    if p.is_file():
        raw = p.read_text(encoding="utf-8").strip()
        if raw.startswith("{"):
            try:
                raw = json.loads(raw).get("public_key", "")
            except (json.JSONDecodeError, AttributeError):
                raise BadInput(f"--public-key: '{p.name}' is neither 64 hex digits nor a head file") from None
        text = raw
    try:
        return trail.load_public_key(text)
    except ValueError as e:
        raise BadInput(f"--public-key: {e}") from None


def _existing(path: str, flag: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{flag}: '{path}' is not an existing file")
    return p


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m utils.governance",
        description="ModelSec Workbench governance (lesson 09_governance_and_audit): check an audit trail, "
                    "build release evidence from it, and gate a model release on that evidence.",
        epilog="Exit status: 0 promoted / verifies, 1 blocked / does not verify, 2 bad input.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{gate,verify,evidence}")

    def trail_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--trail", required=True, metavar="T.jsonl", help="the audit trail (JSON lines)")
        p.add_argument("--public-key", required=True, metavar="HEX-or-FILE",
                       help="the trail's Ed25519 public key: 64 hex digits, a file holding them, or a head file")
        p.add_argument("--head", metavar="H.json",
                       help="the trail's signed head (AuditTrail.write_head); without it, entries cut off the "
                            "end of the trail cannot be noticed")

    gate = sub.add_parser(
        "gate", help="promote or block a model release (exit 0 promoted, 1 blocked, 2 bad input)",
        description="Check every release rule on the evidence: metrics must be traceable to verifying "
                    "'evaluation' entries of the trail, the weights' sha256, signature and ML-BOM must check "
                    "out. Prints one row a rule and the verdict.",
        epilog="Exit status: 0 promoted, 1 blocked (a rule fails, the trail does not verify), 2 bad input.")
    gate.add_argument("--evidence", required=True, metavar="E.json",
                      help="release evidence: model {name, version, weights, sha256}, metrics {name: {value, run}}, "
                           "signature, mlbom (paths relative to this file)")
    trail_args(gate)
    gate.add_argument("--rules", metavar="rules.json",
                      help="a JSON list of rules {name, metric, op, threshold, why} (default: the course's rules)")
    gate.add_argument("--publisher-key", metavar="PEM",
                      help="the publisher's PEM public key the weights' signature must verify with (pin it here; "
                           "default: the key the evidence names)")
    gate.add_argument("--record", action="store_true",
                      help="append the decision to the trail as a 'release' entry (needs --key-seed)")
    gate.add_argument("--key-seed", type=int, metavar="N",
                      help="seed of the trail's signing key (utils.governance.trail.signing_key; the course's "
                           "reproducible keys only)")
    gate.add_argument("--json", action="store_true", help="print the decision as JSON instead of a table")

    ver = sub.add_parser("verify", help="verify an audit trail (exit 0 ok, 1 tampered, 2 bad input)",
                         description="Check every entry's hash, signature and link to the one before; name the "
                                     "first bad entry and what was done to it.",
                         epilog="Exit status: 0 the trail verifies, 1 it does not, 2 bad input.")
    trail_args(ver)

    evi = sub.add_parser("evidence", help="write release evidence from a verified trail's evaluation entries",
                         description="For each metric of the default rules, take the latest 'evaluation' entry "
                                     "recorded for these weights (their sha256) and write its value and hash.",
                         epilog="Exit status: 0 written, 1 the trail does not verify, 2 bad input.")
    trail_args(evi)
    evi.add_argument("--weights", required=True, metavar="W", help="the model's weights file (safetensors)")
    evi.add_argument("--name", required=True, help="the model's name")
    evi.add_argument("--version", required=True, help="the model's version")
    evi.add_argument("--signature", metavar="S", help="the publisher's signature bundle of the weights")
    evi.add_argument("--mlbom", metavar="M", help="the model's ML-BOM (CycloneDX 1.6 JSON)")
    evi.add_argument("--publisher-key", metavar="PEM", help="the publisher's PEM public key (recorded in the evidence)")
    evi.add_argument("--metric", action="append", dest="metrics", metavar="NAME",
                     help="a metric to collect (repeatable; default: those of the course's rules)")
    evi.add_argument("--out", required=True, metavar="E.json", help="where to write the evidence")
    return parser


def _gate(args) -> int:
    from utils.governance import release, trail

    key = read_public_key(args.public_key)
    trail_path = _existing(args.trail, "--trail")
    evidence_path = _existing(args.evidence, "--evidence")
    head = None if args.head is None else _existing(args.head, "--head")
    rules = release.DEFAULT_RULES if args.rules is None else release.rules_from(_existing(args.rules, "--rules"))
    publisher = None if args.publisher_key is None else _existing(args.publisher_key, "--publisher-key")
    signer = None
    if args.record:
        if args.key_seed is None:
            raise BadInput("--record needs --key-seed (the trail's signing key)")
        signer = trail.signing_key(args.key_seed)
        if trail.public_key_hex(signer) != trail.public_key_hex(key):
            raise BadInput(f"--key-seed {args.key_seed} does not make the key given by --public-key")
    elif args.key_seed is not None:
        raise BadInput("--key-seed is only used with --record")
    evidence = release.load_evidence(evidence_path)
    decision = release.evaluate(evidence, rules, trail_path=trail_path, public_key=key, publisher_key=publisher,
                                head=head)
    recorded = None
    if signer is not None:
        try:
            t = trail.AuditTrail(trail_path, signer)
        except ValueError as e:
            recorded = f"not recorded: {e}"
        else:
            data = release.release_record(decision)
            entry = t.append("release", data, actor="release-gate")
            recorded = f"recorded as entry {entry.index} ({entry.hash[:12]}) of '{trail_path.name}'"
    if args.json:
        print(json.dumps({"passed": decision.passed, "summary": decision.summary(), "recorded": recorded,
                          "results": decision.rows()}, indent=1, default=str))
    else:
        print(decision.text())
        if recorded:
            print(recorded)
    return EXIT_OK if decision.passed else EXIT_BLOCKED


def _verify(args) -> int:
    from utils.governance import trail

    key = read_public_key(args.public_key)
    path = _existing(args.trail, "--trail")
    head = None if args.head is None else _existing(args.head, "--head")
    result = trail.verify(path, key, head=head)
    print(result.summary())
    for p in result.problems:
        where = "head" if p.index is None else f"entry {p.index} (line {p.index + 1})"
        print(f"  {where}: {p.kind}: {p.detail}")
    return EXIT_OK if result.ok else EXIT_BLOCKED


def _evidence(args) -> int:
    from utils.governance import release, trail

    key = read_public_key(args.public_key)
    path = _existing(args.trail, "--trail")
    check = trail.verify(path, key, head=None if args.head is None else _existing(args.head, "--head"))
    if not check.ok:
        print(f"the trail does not verify, no evidence written: {check.summary()}")
        return EXIT_BLOCKED
    doc = release.evidence_from_trail(path, key, weights=_existing(args.weights, "--weights"), name=args.name,
                                      version=args.version, signature=args.signature, mlbom=args.mlbom,
                                      publisher_key=args.publisher_key, metrics=args.metrics)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote '{out}': {len(doc['metrics'])} metrics ({', '.join(doc['metrics']) or 'none'}) traced to the trail")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (taught in 09_governance_and_audit)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help exits 0, a usage error 2
        return int(e.code or 0)
    try:
        return {"gate": _gate, "verify": _verify, "evidence": _evidence}[args.command](args)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
    except ValueError as e:  # utils.validation.ValidationError: where, what was wrong, what is allowed
        print(f"error: {e}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
