"""Serve a course model over HTTP: ``python -m utils.serving --host 0.0.0.0 --port 8000 --model mlp``.

The entry point of the container in ``deploy/`` (taught in 07_secure_deployment). It serves
the course's digits model (``data.load("digits", seed=0)``, ``training.fit(training.preset(model,
seed=0), ...)``, from the model cache when it was trained before) behind
:func:`utils.serving.create_app` with the default :class:`~utils.serving.ApiSettings`.

The token key is read from the file named by the environment variable
``MODELSEC_API_KEY_FILE`` (a secret mounted at run time, e.g. ``/run/secrets/api_key``): the
file's bytes, as they are, at least 32 of them. Without it the server refuses to start, and it
checks the key before it loads anything else. The key is never printed or logged.

``--issue SUBJECT`` prints one token for SUBJECT (signed with the same key) and exits: the
operator's way to hand a client a token.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

KEY_ENV = "MODELSEC_API_KEY_FILE"
MODELS = ("mlp", "cnn")


def read_key(environ=None) -> bytes:
    """The API's token key from the file named by ``MODELSEC_API_KEY_FILE``
    (taught in 07_secure_deployment).

    Raises :class:`utils.validation.ValidationError` naming what is wrong (never the key itself).
    """
    from utils import validation as v
    from utils.serving.auth import MIN_KEY_BYTES

    where = "read_key"
    environ = os.environ if environ is None else environ
    name = environ.get(KEY_ENV, "")
    if not name:
        v.fail(where, f"{KEY_ENV} is not set", f"set it to the path of a file holding at least {MIN_KEY_BYTES} "
                                               "random bytes (e.g. a secret mounted at /run/secrets/api_key)")
    path = Path(name)
    if not path.is_file():
        v.fail(where, f"{KEY_ENV} names {path}, which is not a file", "mount the key file there")
    try:
        key = path.read_bytes()
    except OSError as e:
        v.fail(where, f"{KEY_ENV} names {path}, which cannot be read ({e.strerror})",
               "the server's user must be able to read the key file")
    if len(key) < MIN_KEY_BYTES:
        v.fail(where, f"the key in {path} is {len(key)} bytes",
               f"at least {MIN_KEY_BYTES} random bytes (e.g. head -c 32 /dev/urandom > {path.name})")
    return key


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m utils.serving`` (taught in 07_secure_deployment)."""
    p = argparse.ArgumentParser(prog="python -m utils.serving", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 inside a container only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--model", choices=MODELS, default="mlp", help="the course's digits model to serve")
    p.add_argument("--seed", type=int, default=0, help="data split and training seed (default 0)")
    p.add_argument("--audit", type=Path, default=None,
                   help="append the audit log to this JSON-lines file (default: in memory only)")
    p.add_argument("--issue", metavar="SUBJECT", default=None,
                   help="print one token for SUBJECT, signed with the key, and exit")
    p.add_argument("--scopes", default="predict", help="scopes of --issue, comma-separated (default predict)")
    p.add_argument("--ttl", type=float, default=3600.0, help="lifetime of --issue's token in seconds")
    return p


def load_model(name: str = "mlp", seed: int = 0):
    """The course's digits model ``name``, trained (or loaded from the cache) as lesson 00 does
    (taught in 07_secure_deployment)."""
    import utils
    from utils import data, training

    utils.setup(seed, plots=False)
    ds = data.load("digits", seed=seed)
    model = training.fit(training.preset(name, seed=seed), ds.X_train, ds.y_train, ds.n_classes)
    return model.eval(), tuple(ds.X_train.shape[1:])


def main(argv: list[str] | None = None) -> int:
    """Check the key, then serve (or issue a token); the exit status (taught in 07_secure_deployment)."""
    args = build_parser().parse_args(argv)
    if not 1 <= args.port <= 65535:
        print(f"error: --port must be in 1..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        key = read_key()  # first: no model is loaded for a server that may not start
    except ValueError as e:
        print(f"error: refusing to start: {e}", file=sys.stderr)
        return 2
    from utils import serving

    issuer = serving.TokenIssuer(key)
    del key
    if args.issue is not None:
        print(issuer.issue(args.issue, [s.strip() for s in args.scopes.split(",") if s.strip()], ttl_s=args.ttl))
        return 0

    import uvicorn

    model, shape = load_model(args.model, args.seed)
    audit = serving.AuditLog(args.audit)
    app = serving.create_app(model, issuer, serving.ApiSettings(), audit=audit, input_shape=shape,
                             title=f"ModelSec model API ({args.model}, digits)")
    print(f"serving the {args.model} digits model on http://{args.host}:{args.port} "
          f"(key from {KEY_ENV}; audit: {args.audit or 'in memory'})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False, server_header=False,
                proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
