"""The request builder of 07_secure_deployment: compose a request, see the API's decision.

The panel talks to the app in-process (Starlette's ``TestClient``: no socket, no port), so
it works whether or not a server is running; every request it sends is decided and audited
by the same code as a request over the network.
"""
from __future__ import annotations

import html
import json

import numpy as np

from utils import validation as v
from utils.widgets.core import result_label

TOKENS = {"a valid token": "valid", "no token": "none", "forged (another key)": "forged", "expired": "expired"}
SCOPES = {"predict": ("predict",), "predict + predict:scores": ("predict", "predict:scores"),
          "admin": ("admin",), "no scope": ()}
SHAPES = {"(1, 8, 8) per image": "ok", "(1, 8, 4) per image": "narrow", "flat 64 values": "flat"}
VALUES = {"in [0, 1]": "ok", "0-255 pixels": "255", "one NaN": "nan"}


def build_request(images: np.ndarray, issuer, *, token: str = "valid", scopes=("predict",), shape: str = "ok",
                  values: str = "ok", batch: int = 1) -> tuple[dict, bytes]:
    """The headers and JSON body of a request as the panel composes it (taught in 07_secure_deployment)."""
    from utils.serving import TokenIssuer

    where = "build_request"
    v.choice(token, "token", where, tuple(TOKENS.values()))
    v.choice(shape, "shape", where, tuple(SHAPES.values()))
    v.choice(values, "values", where, tuple(VALUES.values()))
    batch = v.integer(batch, "batch", where, 1, 1000)
    images = v.images(images, where, allow_empty=False)
    X = images[np.arange(batch) % len(images)].astype(np.float64)
    if values == "255":
        X = X * 255
    body = {"images": X.tolist()}
    if shape == "narrow":
        body = {"images": X[:, :, :, :4].tolist()}
    elif shape == "flat":
        body = {"images": X.reshape(len(X), -1).tolist()}
    text = json.dumps(body)
    if values == "nan":
        text = text.replace("0.0", "NaN", 1)
    headers = {"content-type": "application/json"}
    if token != "none":
        signer = TokenIssuer() if token == "forged" else issuer
        headers["authorization"] = "Bearer " + signer.issue("widget", scopes, ttl_s=-1 if token == "expired" else None)
    return headers, text.encode()


def request_panel(app, issuer, images: np.ndarray):
    """Dropdowns for the token, its scopes, the image shape and values, and a batch slider; each
    change sends the request to ``app`` and shows the status, the reason or the answer, and the
    audit entry it left (taught in 07_secure_deployment)."""
    import warnings

    import ipywidgets as widgets

    with warnings.catch_warnings():  # Starlette deprecates its TestClient's httpx backend; it still works
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    images = v.images(images, "request_panel", allow_empty=False)
    client = TestClient(app, raise_server_exceptions=False)
    token = widgets.Dropdown(options=list(TOKENS.items()), value="valid", description="token")
    scope = widgets.Dropdown(options=list(SCOPES.items()), value=("predict",), description="scopes")
    shape = widgets.Dropdown(options=list(SHAPES.items()), value="ok", description="shape")
    values = widgets.Dropdown(options=list(VALUES.items()), value="ok", description="values")
    batch = widgets.IntSlider(value=2, min=1, max=100, description="batch")
    label = result_label()
    detail = widgets.HTML()

    def send(*_):
        headers, body = build_request(images, issuer, token=token.value, scopes=scope.value, shape=shape.value,
                                      values=values.value, batch=batch.value)
        r = client.post("/predict", content=body, headers=headers)
        answer = r.json()
        if r.status_code == 200:
            shown = f"labels {answer['labels'][:8]}{' …' if len(answer['labels']) > 8 else ''}, output: {answer['output']}"
        else:
            shown = answer.get("detail", "")
        label.value = f"<b>{r.status_code}</b> · {html.escape(str(shown))}"
        entry = app.state.audit.tail(1)[0] if app.state.audit.tail(1) else {}
        keep = {k: entry.get(k) for k in ("client", "scopes", "decision", "status", "reason", "n_images")}
        detail.value = ("<small>audit entry: <code>" + html.escape(json.dumps(keep)) + "</code></small>")

    for w in (token, scope, shape, values, batch):
        w.observe(send, names="value")
    send()
    return widgets.VBox([widgets.HBox([token, scope]), widgets.HBox([shape, values]), batch, label, detail])
