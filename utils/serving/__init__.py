"""Serving a course model securely: tokens, access decisions, audit log, a hardened API.

- :mod:`utils.serving.auth`: signed short-lived tokens (PyJWT) with scopes.
- :mod:`utils.serving.policy`: the one access decision and the output policy.
- :mod:`utils.serving.audit`: the JSON-lines audit log that lessons 08 and 09 read.
- :mod:`utils.serving.app`: the FastAPI application, each defense switchable.
- :mod:`utils.serving.server`: run it on loopback from a notebook or a test.

Taught in 07_secure_deployment.
"""
from utils.serving.app import ApiSettings, create_app
from utils.serving.audit import AuditLog, read_audit
from utils.serving.auth import SCOPES, AuthError, Identity, TokenIssuer
from utils.serving.policy import Context, Decision, decide, shape_output
from utils.serving.server import ApiServer, client

__all__ = ["ApiSettings", "create_app", "AuditLog", "read_audit", "SCOPES", "AuthError", "Identity",
           "TokenIssuer", "Context", "Decision", "decide", "shape_output", "ApiServer", "client"]
