"""The hardened model API: a FastAPI application around a course model (taught in 07_secure_deployment).

Every request to ``POST /predict`` passes, in order:

1. **size**: a body over ``max_body_bytes`` is refused (413) before it is parsed;
2. **identity**: a bearer token verified by :class:`~utils.serving.auth.TokenIssuer` (401);
3. **rate**: at most ``rate`` requests per client (the token's subject, not the IP), with the
   ``limits`` library, slowapi's engine (429 with ``Retry-After``);
4. **input**: pydantic checks the shape, that every value is a finite number in [0, 1] and
   that there are no extra fields (422 naming the first bad place);
5. **access decision**: :func:`~utils.serving.policy.decide` (scope 403, batch 413, quota 429),
   and the output policy the scopes allow (labels, rounded or full probabilities).

Every decision, allowed or not, is appended to the audit log. Each defense can be switched
off in :class:`ApiSettings`, so that a lesson can show what it stops. The OpenAPI schema
(``/openapi.json``) documents every status the app returns.
"""

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from limits import parse as parse_rate
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field

from utils import validation as v
from utils.serving import policy
from utils.serving.audit import AuditLog, sha256_of
from utils.serving.auth import AuthError, Identity, TokenIssuer, bearer


@dataclass(frozen=True)
class ApiSettings:
    """The API's limits and which defenses are on (taught in 07_secure_deployment).

    Attributes:
        auth: require a valid token (off: every request is client ``"anonymous"`` with every scope).
        rate_limit: at most ``rate`` requests per client, e.g. ``"20/second"``.
        size_limit: refuse bodies over ``max_body_bytes``.
        validation: check the input's shape, type and range (off: whatever parses as JSON
            reaches the model, which may answer nonsense or fail).
        batch_limit: at most ``max_batch`` images per request.
        quota: at most ``quota_images`` images answered per client in all.
        output_policy: answer what the scopes allow (off: full probabilities for everyone).
        scores: what a ``predict:scores`` token gets, ``"full"``, ``"rounded"`` (to ``decimals``)
            or ``"reverse_sigmoid"`` (probabilities perturbed with ``beta``, ``gamma``; see
            :func:`utils.serving.policy.reverse_sigmoid`, taught in 06_model_theft_and_privacy).
    """

    auth: bool = True
    rate_limit: bool = True
    size_limit: bool = True
    validation: bool = True
    batch_limit: bool = True
    quota: bool = True
    output_policy: bool = True
    rate: str = "20/second"
    max_body_bytes: int = 100_000
    max_batch: int = 64
    quota_images: int = 10_000
    scores: str = "full"
    decimals: int = 1
    beta: float = 1.0
    gamma: float = 0.4

    def __post_init__(self):
        where = "ApiSettings"
        for name in ("auth", "rate_limit", "size_limit", "validation", "batch_limit", "quota", "output_policy"):
            if not isinstance(getattr(self, name), bool):
                v.fail(where, f"{name} = {getattr(self, name)!r}", f"{name} must be True or False")
        try:
            parse_rate(self.rate)
        except ValueError:
            v.fail(where, f"rate = {self.rate!r} is not a rate", "rate must read like '20/second' or '100/minute'")
        v.integer(self.max_body_bytes, "max_body_bytes", where, 1_000, 100_000_000)
        v.integer(self.max_batch, "max_batch", where, 1, 100_000)
        v.integer(self.quota_images, "quota_images", where, 1, 10**9)
        v.choice(self.scores, "scores", where, policy.SCORES)
        v.integer(self.decimals, "decimals", where, 0, 6)
        v.real(self.beta, "beta", where, 0.0, 10.0)
        v.real(self.gamma, "gamma", where, 0.0, 100.0)

    def without(self, *defenses: str) -> "ApiSettings":
        """The same settings with the named defenses off, e.g. ``settings.without("auth", "validation")``."""
        names = {"auth", "rate_limit", "size_limit", "validation", "batch_limit", "quota", "output_policy"}
        bad = [d for d in defenses if d not in names]
        if bad:
            v.fail("ApiSettings.without", f"unknown defenses {bad}", f"defenses are {sorted(names)}")
        return dataclasses.replace(self, **{d: False for d in defenses})


class Refusal(BaseModel):
    """The body of every 4xx answer: what was wrong (taught in 07_secure_deployment)."""

    detail: str


class Prediction(BaseModel):
    """The body of an allowed prediction (taught in 07_secure_deployment)."""

    labels: list[int]
    output: str
    probabilities: Optional[list[list[float]]] = None


_REFUSALS = {
    401: "no token, or a token that is malformed, expired or not signed by this API",
    403: "the token lacks the scope this endpoint needs",
    413: "the body is larger than the API accepts, or the batch has too many images",
    422: "the body is not valid JSON of the documented shape, or a value is out of range",
    429: "too many requests for this client (see Retry-After), or its quota is used up",
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": Refusal, "description": _REFUSALS[c]} for c in codes}


def _image_type(shape: Sequence[int]):
    """A pydantic type for one image of ``shape``: nested lists of finite numbers in [0, 1]."""
    # strict: a number, not a numeric string or a boolean (JSON integers 0 and 1 are numbers)
    pixel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
    t: Any = pixel
    for n in reversed(tuple(shape)):
        t = Annotated[list[t], Field(min_length=n, max_length=n)]
    return t


def _request_model(shape: Sequence[int], validation: bool) -> type[BaseModel]:
    if not validation:
        class LooseRequest(BaseModel):
            """Whatever JSON the client sends under "images" (validation off)."""
            images: Any = None
        return LooseRequest

    image = _image_type(shape)

    class PredictRequest(BaseModel):
        """A batch of images, each of the model's input shape, values in [0, 1]."""
        model_config = ConfigDict(extra="forbid")
        images: Annotated[list[image], Field(min_length=1)]  # type: ignore[valid-type]
    return PredictRequest


def _first_error(errors: Sequence[dict[str, Any]]) -> str:
    if not errors:
        return "invalid request"
    e = errors[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                    for i, p in enumerate(e.get("loc", ())))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{where}: {e.get('msg', 'invalid')}{more}"


class _BodyLimit:
    """ASGI middleware: refuse a body over ``limit`` bytes with 413 before the app reads it."""

    def __init__(self, app, limit: int, on_refuse):
        self.app, self.limit, self.on_refuse = app, limit, on_refuse

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_big = declared is not None and declared.isdigit() and int(declared) > self.limit
        chunks, size = [], 0
        if not too_big:
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":  # the client left
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                if size > self.limit:
                    too_big = True
                    break
        if too_big:
            reason = f"body larger than {self.limit} bytes"
            self.on_refuse(headers.get(b"authorization", b"").decode("latin-1"), reason)
            body = json.dumps({"detail": reason}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def create_app(model, issuer: TokenIssuer, settings: ApiSettings = ApiSettings(), *,
               audit: AuditLog | None = None, input_shape: Sequence[int] = (1, 8, 8),
               title: str = "ModelSec model API") -> FastAPI:
    """The API for ``model`` (an eval-mode classifier of ``input_shape`` images), with tokens
    from ``issuer`` and the defenses of ``settings`` (taught in 07_secure_deployment).

    The app keeps its audit log in ``app.state.audit`` and its per-client usage in
    ``app.state.usage``.
    """
    from utils import training

    where = "create_app"
    v.eval_mode(model, where)
    if not isinstance(issuer, TokenIssuer):
        v.fail(where, f"issuer is {type(issuer).__name__}", "issuer must be a serving.TokenIssuer")
    if not isinstance(settings, ApiSettings):
        v.fail(where, f"settings is {type(settings).__name__}", "settings must be a serving.ApiSettings")
    shape = tuple(v.integer(n, "input_shape", where, 1, 4096) for n in input_shape)
    audit = audit if audit is not None else AuditLog()
    usage = policy.Usage()
    limiter = MovingWindowRateLimiter(MemoryStorage())
    rate = parse_rate(settings.rate)
    bearer_scheme = HTTPBearer(auto_error=False, description="a token from the API's TokenIssuer")
    Body = _request_model(shape, settings.validation)

    app = FastAPI(title=title, version="1.0",
                  description="Predictions of a course model behind identity, context and access checks.")
    app.state.audit, app.state.usage, app.state.settings = audit, usage, settings

    def identify(header: str) -> Identity | None:
        try:
            return issuer.verify(bearer(header))
        except AuthError:
            return None

    def refuse_big(header: str, reason: str) -> None:
        who = identify(header) if settings.auth else None
        audit.record(client=who.subject if who else None, scopes=who.scopes if who else (),
                     decision="deny", status=413, reason=reason)

    if settings.size_limit:
        app.add_middleware(_BodyLimit, limit=settings.max_body_bytes, on_refuse=refuse_big)

    def authorize(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Identity:
        if settings.auth:
            header = request.headers.get("authorization")
            identity = issuer.verify(bearer(header))  # AuthError: 401
        else:
            identity = Identity("anonymous", frozenset({"predict", "predict:scores"}))
        request.state.identity = identity
        if settings.rate_limit and not limiter.hit(rate, "api", identity.subject):
            reset = limiter.get_window_stats(rate, "api", identity.subject).reset_time
            raise _Throttled(identity, max(1, int(np.ceil(reset - _now()))))
        return identity

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError):
        audit.record(client=None, decision="deny", status=exc.status, reason=exc.reason)
        return JSONResponse({"detail": exc.reason}, status_code=exc.status,
                            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)

    @app.exception_handler(_Throttled)
    async def _throttled(request: Request, exc: _Throttled):
        reason = f"rate limit of {settings.rate} per client exceeded"
        audit.record(client=exc.identity.subject, scopes=exc.identity.scopes, decision="deny", status=429,
                     reason=reason)
        return JSONResponse({"detail": reason}, status_code=429, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        reason = _first_error(exc.errors())
        who = getattr(request.state, "identity", None)
        audit.record(client=who.subject if who else None, scopes=who.scopes if who else (), decision="deny",
                     status=422, reason=reason)
        return JSONResponse({"detail": reason}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        # FastAPI answers an undecodable body (not UTF-8, not JSON) with a bare 400: make it the
        # documented 422 with a reason, like every other malformed request
        status = 422 if exc.status_code == 400 else exc.status_code
        reason = "the body is not UTF-8 JSON" if exc.status_code == 400 else str(exc.detail)
        if status == 422:
            who = getattr(request.state, "identity", None)
            audit.record(client=who.subject if who else None, scopes=who.scopes if who else (), decision="deny",
                         status=422, reason=reason)
        return JSONResponse({"detail": reason}, status_code=status, headers=getattr(exc, "headers", None))

    @app.get("/health", summary="Liveness: no token needed")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict", response_model=Prediction, summary="Classify a batch of images",
              responses=_responses(401, 403, 413, 422, 429))
    def predict(request: Request, body: Body, identity: Identity = Depends(authorize)):  # type: ignore[valid-type]
        raw = body.images
        try:
            X = np.asarray(raw, dtype=np.float32)
        except (TypeError, ValueError):
            if settings.validation:
                raise
            X = None
        n = int(X.shape[0]) if X is not None and X.ndim >= 1 else 1
        digest = sha256_of(X.tobytes() if X is not None else json.dumps(raw).encode())
        context = policy.Context(n_images=n, used=usage.used(identity.subject),
                                 quota=settings.quota_images if settings.quota else None,
                                 max_batch=settings.max_batch if settings.batch_limit else None,
                                 scores=settings.scores)
        decision = policy.decide(identity, context)
        if not decision.allow:
            audit.record(client=identity.subject, scopes=identity.scopes, input_sha256=digest, decision="deny",
                         status=decision.status, reason=decision.reason, n_images=n)
            return JSONResponse({"detail": decision.reason}, status_code=decision.status)
        # validation off: whatever arrived goes to the model, and may fail there (a 500)
        proba = training.predict_proba(model, X) if settings.validation else _unchecked(model, X)
        output = decision.output if settings.output_policy else "full"
        answer = policy.shape_output(proba, output, settings.decimals, settings.beta, settings.gamma)
        usage.add(identity.subject, n)
        audit.record(client=identity.subject, scopes=identity.scopes, input_sha256=digest, decision="allow",
                     status=200, reason=decision.reason, n_images=n, output_class=answer["labels"])
        return answer

    @app.get("/audit", summary="The latest audit entries (admin only)", responses=_responses(401, 403, 422, 429))
    def audit_tail(identity: Identity = Depends(authorize), n: Annotated[int, Field(ge=0, le=1000)] = 20):
        if not identity.has("admin"):
            reason = f"token of {identity.subject!r} lacks the scope 'admin'"
            audit.record(client=identity.subject, scopes=identity.scopes, decision="deny", status=403, reason=reason)
            return JSONResponse({"detail": reason}, status_code=403)
        return {"entries": audit.tail(n)}

    return app


class _Throttled(Exception):
    def __init__(self, identity: Identity, retry_after: int):
        super().__init__("rate limited")
        self.identity, self.retry_after = identity, retry_after


def _now() -> float:
    import time
    return time.time()


def _unchecked(model, X):
    """The model's probabilities for whatever arrived, with no checks (validation off)."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(np.asarray(X, dtype=np.float32)).to(next(model.parameters()).device)
        return torch.softmax(model(x), dim=1).cpu().numpy()
