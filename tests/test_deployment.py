"""utils.deployment: unsafe pickles shown safely, scanners, signatures, the load gate, the ML-BOM."""
from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

import pytest
import torch

from utils import deployment as dep
from utils.models import build_model
from utils.validation import ValidationError


def _model(seed: int = 0, hidden=(16,)):
    return build_model("mlp", (1, 8, 8), 10, seed=seed, hidden=hidden)


@pytest.fixture()
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("deploy")
    model = _model()
    out = {
        "benign.pt": dep.make_benign_checkpoint(d / "benign.pt", model),
        "malicious.pt": dep.make_malicious_pickle(d / "malicious.pt", d / "marker_exec", model=model),
        "bypass.pt": dep.make_malicious_pickle(d / "bypass.pt", d / "marker_touch", model=model,
                                               via="pathlib.Path.touch"),
        "model.safetensors": d / "model.safetensors",
    }
    dep.save_weights(model, out["model.safetensors"])
    return d, model, out


# --------------------------------------------------------------------------- serialization


def test_the_tmp_folders_are_inside_the_temporary_folder(files):
    d, _, _ = files
    assert d.resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())


@pytest.mark.parametrize("via,marker", [("builtins.exec", "marker_exec"), ("pathlib.Path.touch", "marker_touch")])
def test_loading_the_malicious_pickle_runs_its_payload_only_in_a_subprocess(files, via, marker):
    d, _, out = files
    name = "malicious.pt" if via == "builtins.exec" else "bypass.pt"
    assert not (d / marker).exists(), "writing the file must not run the payload"
    assert dep.weights_only_refusal(out[name]) is not None  # refused in this process: still no marker
    assert not (d / marker).exists()
    assert dep.unsafe_load_in_subprocess(out[name], d / marker) is True
    assert (d / marker).exists() and (d / marker).stat().st_size == 0
    assert sorted(p.name for p in d.iterdir() if p.name.startswith("marker")) <= ["marker_exec", "marker_touch"]


def test_a_benign_checkpoint_leaves_no_marker(files, tmp_path):
    _, _, out = files
    assert dep.unsafe_load_in_subprocess(out["benign.pt"], tmp_path / "never") is False


def test_weights_only_refuses_the_payloads_and_loads_the_benign_file(files):
    _, _, out = files
    assert dep.weights_only_refusal(out["malicious.pt"]) == \
        "Unsupported global: GLOBAL exec was not an allowed global by default."
    assert "Unsupported operand" in dep.weights_only_refusal(out["bypass.pt"])
    assert dep.weights_only_refusal(out["benign.pt"]) is None


def test_the_marker_must_be_new_and_inside_the_temporary_folder(tmp_path):
    with pytest.raises(ValidationError, match="outside the temporary folder"):
        dep.make_malicious_pickle(tmp_path / "x.pt", Path.home() / "marker")
    (tmp_path / "old").write_text("")
    with pytest.raises(ValidationError, match="exists already"):
        dep.make_malicious_pickle(tmp_path / "x.pt", tmp_path / "old")
    with pytest.raises(ValidationError, match="via must be one of"):
        dep.make_malicious_pickle(tmp_path / "x.pt", tmp_path / "m", via="os.system")
    with pytest.raises(ValidationError, match="does not exist"):
        dep.make_malicious_pickle(tmp_path / "no" / "x.pt", tmp_path / "m")
    with pytest.raises(ValidationError, match="torch.nn.Module"):
        dep.make_benign_checkpoint(tmp_path / "x.pt", {"w": torch.zeros(1)})
    with pytest.raises(ValidationError, match="not an existing file"):
        dep.unsafe_load_in_subprocess(tmp_path / "missing.pt", tmp_path / "m")


def test_safetensors_round_trips_the_weights_exactly(files, tmp_path):
    _, model, out = files
    other = _model(seed=1)
    assert not dep.same_weights(model, other)
    loaded = dep.load_weights(out["model.safetensors"], other)
    assert loaded is other and dep.same_weights(model, loaded) and not loaded.training
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(model(x), loaded(x))
    assert dep.is_safetensors(out["model.safetensors"]) and not dep.is_safetensors(out["benign.pt"])
    sha = dep.save_weights(model, tmp_path / "again.safetensors")
    assert sha == dep.sha256_file(tmp_path / "again.safetensors") == dep.sha256_file(out["model.safetensors"])


def test_load_weights_is_strict(files):
    _, _, out = files
    with pytest.raises(ValidationError, match=r"'features.0.weight' has shape \(16, 64\), the model expects \(32, 64\)"):
        dep.load_weights(out["model.safetensors"], _model(hidden=(32,)))
    with pytest.raises(ValidationError, match="missing keys"):
        dep.load_weights(out["model.safetensors"], _model(hidden=(16, 16)))
    with pytest.raises(ValidationError, match="not a safetensors file"):
        dep.load_weights(out["benign.pt"], _model())


# --------------------------------------------------------------------------- scanners


#: What each scanner says on each file, measured with modelscan 0.8.8, picklescan 1.0.5, fickling 0.1.12.
EXPECTED = {
    "benign.pt": {"modelscan": "safe", "picklescan": "safe", "fickling": "unsafe"},  # fickling: a false positive
    "malicious.pt": {"modelscan": "unsafe", "picklescan": "unsafe", "fickling": "unsafe"},
    "bypass.pt": {"modelscan": "safe", "picklescan": "safe", "fickling": "unsafe"},  # two misses (and see below)
    "model.safetensors": {"modelscan": "safe", "picklescan": "safe", "fickling": "error"},
}


def test_each_scanner_on_each_file(files, offline):
    _, _, out = files
    table = dep.verdict_table(out)
    assert table == [{"file": name, **EXPECTED[name]} for name in out]


def test_scanner_findings_say_why(files):
    _, _, out = files
    mal = dep.scan_all(out["malicious.pt"])
    assert any(f.startswith("CRITICAL: ") and ".exec " in f for f in mal["modelscan"].findings)
    assert mal["picklescan"].findings == ("dangerous: __builtin__.exec",)  # protocol 2 spells builtins so
    assert mal["fickling"].findings[0] == "severity OVERTLY_MALICIOUS"
    # the bypass: modelscan reports nothing; picklescan only calls Path.touch suspicious, which
    # its default verdict ignores and strict mode counts; fickling still objects
    byp = dep.scan_all(out["bypass.pt"])
    assert byp["modelscan"].findings == ()
    assert "suspicious: pathlib.Path.touch" in byp["picklescan"].findings
    assert dep.scan_picklescan(out["bypass.pt"], strict=True).verdict == "unsafe"
    # fickling's severity on the bypass is the one it gives every torch checkpoint (LIKELY_UNSAFE):
    # Path.touch appears only as an "unused variable"
    assert byp["fickling"].findings[0] == "severity LIKELY_UNSAFE"
    assert any("Path.touch" in f for f in byp["fickling"].findings)
    # the false positive: fickling flags torch's own tensor rebuilders in a checkpoint of tensors only
    ben = dep.scan(out["benign.pt"], "fickling")
    assert ben.findings[0] == "severity LIKELY_UNSAFE" and any("torch._utils" in f for f in ben.findings)
    assert dep.scan_picklescan(out["benign.pt"], strict=True).verdict == "safe"
    st = dep.scan_all(out["model.safetensors"])
    assert not st["modelscan"].scanned and "not scanned" in st["modelscan"].findings[0]
    assert not st["fickling"].scanned


def test_scan_rejects_bad_input(files, tmp_path):
    _, _, out = files
    with pytest.raises(ValidationError, match="scanner must be one of"):
        dep.scan(out["benign.pt"], "clamav")
    with pytest.raises(ValidationError, match="not an existing file"):
        dep.scan_all(tmp_path / "missing.pt")
    with pytest.raises(ValidationError, match="strict must be True or False"):
        dep.scan_picklescan(out["benign.pt"], strict="yes")


# --------------------------------------------------------------------------- signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return dep.make_keypair(d, "publisher"), dep.make_keypair(d, "attacker")


def test_sign_verify_flip_a_byte(keys, tmp_path, offline):
    publisher, _ = keys
    model_file = tmp_path / "model.safetensors"
    dep.save_weights(_model(), model_file)
    sig = dep.sign(model_file, publisher.private, tmp_path / "model.sig")
    assert json.loads(sig.read_text())["verificationMaterial"]["tlogEntries"] == []  # no transparency log
    assert dep.verify(model_file, publisher.public, sig) is True
    data = bytearray(model_file.read_bytes())
    data[-1] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(dep.SignatureError, match="'model.safetensors' failed signature verification: its sha256"):
        dep.verify(model_file, publisher.public, sig)


def test_verify_names_the_kind_of_failure(keys, tmp_path):
    publisher, attacker = keys
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"a" * 100)
    b.write_bytes(b"b" * 100)
    by_attacker = dep.sign(a, attacker.private, tmp_path / "a_attacker.sig")
    with pytest.raises(dep.SignatureError, match="another key") as e:
        dep.verify(a, publisher.public, by_attacker)
    assert e.value.path == a
    sig_a = dep.sign(a, publisher.private, tmp_path / "a.sig")
    with pytest.raises(dep.SignatureError, match="'b.bin'.*sha256 differs"):
        dep.verify(b, publisher.public, sig_a)
    (tmp_path / "junk.sig").write_text("{}")
    with pytest.raises(dep.SignatureError, match="not a signature bundle"):
        dep.verify(a, publisher.public, tmp_path / "junk.sig")


def test_signing_rejects_bad_input(keys, tmp_path):
    publisher, _ = keys
    f = tmp_path / "f.bin"
    f.write_bytes(b"x")
    with pytest.raises(ValidationError, match="not a PEM private key"):
        dep.sign(f, publisher.public, tmp_path / "f.sig")
    with pytest.raises(ValidationError, match="not a PEM public key"):
        dep.verify(f, publisher.private, f)
    with pytest.raises(ValidationError, match="signature_path is the model file"):
        dep.sign(f, publisher.private, f)
    with pytest.raises(ValidationError, match="exists in"):
        dep.make_keypair(publisher.private.parent, "publisher")
    with pytest.raises(ValidationError, match="not an existing folder"):
        dep.make_keypair(tmp_path / "nowhere")
    with pytest.raises(ValidationError, match="name must be"):
        dep.make_keypair(tmp_path, "../x")


# --------------------------------------------------------------------------- the load gate


@pytest.fixture(scope="module")
def release(keys, files, tmp_path_factory):
    """The publisher's release: a safetensors model, its pinned sha256 and signature."""
    publisher, attacker = keys
    _, model, out = files
    d = tmp_path_factory.mktemp("release")
    good = d / "model.safetensors"
    sha = dep.save_weights(model, good)
    return {"path": good, "sha256": sha, "signature": dep.sign(good, publisher.private, d / "model.sig"),
            "public_key": publisher.public, "attacker": attacker, "publisher": publisher, "dir": d,
            "model": model, "files": out}


def _gate(path, release, **changes):
    kwargs = dict(sha256=release["sha256"], public_key=release["public_key"], signature=release["signature"],
                  model_factory=lambda: _model(seed=3))
    kwargs.update(changes)
    return dep.load_gate(path, **kwargs)


def test_the_gate_passes_the_good_artifact(release, offline):
    model, record = _gate(release["path"], release)
    assert [s.step for s in record] == list(dep.STEPS) and all(s.passed for s in record)
    assert dep.same_weights(model, release["model"]) and not model.training


def test_four_tampered_artifacts_four_refusals(release):
    d, publisher, attacker = release["dir"], release["publisher"], release["attacker"]
    # 1. the bytes changed (one weight nudged): the pinned hash no longer matches
    tampered = d / "tampered.safetensors"
    state = {k: t.clone() for k, t in release["model"].state_dict().items()}
    first = next(iter(state))
    state[first][0, 0] += 1e-3
    from safetensors.torch import save_file
    save_file(state, str(tampered))
    refusals = {}
    with pytest.raises(dep.GateRefusal) as e:
        _gate(tampered, release)
    refusals["hash"] = e.value
    # 2. the attacker also replaced the pinned hash, and signed with their own key
    with pytest.raises(dep.GateRefusal) as e:
        _gate(tampered, release, sha256=dep.sha256_file(tampered),
              signature=dep.sign(tampered, attacker.private, d / "tampered_attacker.sig"))
    refusals["signature"] = e.value
    # 3. the publisher pinned and signed a pickle checkpoint that carries a payload
    pickle_file = release["files"]["malicious.pt"]
    with pytest.raises(dep.GateRefusal) as e:
        _gate(pickle_file, release, sha256=dep.sha256_file(pickle_file),
              signature=dep.sign(pickle_file, publisher.private, d / "pickle.sig"))
    refusals["scan"] = e.value
    # 4. the publisher pinned and signed safetensors of another architecture (wrong shapes)
    wide = d / "wide.safetensors"
    dep.save_weights(_model(hidden=(32,)), wide)
    with pytest.raises(dep.GateRefusal) as e:
        _gate(wide, release, sha256=dep.sha256_file(wide), signature=dep.sign(wide, publisher.private, d / "w.sig"))
    refusals["load"] = e.value

    assert [r.step for r in refusals.values()] == list(dep.STEPS)
    assert "the pinned one is" in refusals["hash"].reason
    assert "another key" in refusals["signature"].reason
    assert "picklescan says unsafe" in refusals["scan"].reason and "__builtin__.exec" in refusals["scan"].reason
    assert "'features.0.weight' has shape (32, 64), the model expects (16, 64)" in refusals["load"].reason
    for step, r in refusals.items():
        assert isinstance(r, ValueError) and f"refused at step '{step}'" in str(r)
        assert [s.step for s in r.record] == list(dep.STEPS[:dep.STEPS.index(step) + 1])
        assert all(s.passed for s in r.record[:-1]) and not r.record[-1].passed


def test_a_signed_benign_pickle_and_the_bypass_never_get_unpickled(release):
    d, publisher = release["dir"], release["publisher"]
    for name, step in (("benign.pt", "load"), ("bypass.pt", "scan")):  # strict picklescan catches the bypass
        f = release["files"][name]
        with pytest.raises(dep.GateRefusal) as e:
            _gate(f, release, sha256=dep.sha256_file(f), signature=dep.sign(f, publisher.private, d / f"{name}.sig"))
        assert e.value.step == step, (name, e.value)
        if name == "benign.pt":
            assert "never unpickles" in e.value.reason
        else:
            assert "picklescan says unsafe (dangerous: pathlib.Path.touch; dangerous: pathlib.PosixPath)" in e.value.reason


def test_the_gate_rejects_bad_arguments(release):
    with pytest.raises(ValidationError, match="sha256 must be 64 hex digits"):
        _gate(release["path"], release, sha256="abc")
    with pytest.raises(ValidationError, match="model_factory must be a function"):
        _gate(release["path"], release, model_factory=_model())
    with pytest.raises(ValidationError, match="must return a torch.nn.Module"):
        _gate(release["path"], release, model_factory=lambda: "model")
    with pytest.raises(ValidationError, match="not an existing file"):
        _gate(release["dir"] / "missing", release)


# --------------------------------------------------------------------------- ML-BOM


def test_mlbom_is_a_valid_cyclonedx_1_6_document(release, tmp_path, offline):
    data = tmp_path / "digits.npz"
    data.write_bytes(b"some data")
    config = {"model": "mlp", "epochs": 30, "lr": 0.001, "hidden": [16]}
    doc = dep.mlbom(release["path"], {"digits": data}, config, packages=["torch", "safetensors"])
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["hashes"] == [{"alg": "SHA-256", "content": release["sha256"]}]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["modelsec:config:lr"] == "0.001" and props["modelsec:config:hidden"] == "[16]"
    assert props["modelsec:config:model"] == "mlp"
    by_type = {}
    for c in doc["components"]:
        by_type.setdefault(c["type"], []).append(c)
    assert [c["name"] for c in by_type["data"]] == ["digits"]
    assert by_type["data"][0]["hashes"][0]["content"] == dep.sha256_file(data)
    libs = {c["name"]: c for c in by_type["library"]}
    assert libs["torch"]["version"] == torch.__version__ and libs["torch"]["purl"].startswith("pkg:pypi/torch@")
    assert {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}[model["bom-ref"]] == \
        {"data:digits", "pypi:torch", "pypi:safetensors"}
    dep.validate_mlbom(doc)
    dep.validate_mlbom(json.dumps(doc))


def test_mlbom_lists_the_locked_packages_by_default(release, tmp_path):
    doc = dep.mlbom(release["path"], {}, {})
    libs = {c["name"]: c for c in doc["components"] if c["type"] == "library"}
    locked = dep.locked_packages()
    assert "torch" in libs and "model-signing" in libs and len(libs) > 50
    assert set(libs) <= set(locked)
    props = {p["name"]: p["value"] for p in libs["model-signing"]["properties"]}
    assert props["modelsec:locked_version"] == locked["model-signing"]


def test_an_invalid_document_is_refused(release):
    doc = dep.mlbom(release["path"], {}, {"lr": 0.1}, packages=[])
    doc["metadata"]["component"]["type"] = "neural-net"
    with pytest.raises(ValidationError, match="CycloneDX 1.6 schema"):
        dep.validate_mlbom(doc)
    doc = dep.mlbom(release["path"], {}, {"lr": 0.1}, packages=[])
    doc["surprise"] = 1
    with pytest.raises(ValidationError, match="CycloneDX 1.6 schema"):
        dep.validate_mlbom(doc)


def test_mlbom_rejects_bad_input(release, tmp_path):
    with pytest.raises(ValidationError, match="datasets must be a dict"):
        dep.mlbom(release["path"], ["data.npz"], {})
    with pytest.raises(ValidationError, match=r"datasets\['x'\]"):
        dep.mlbom(release["path"], {"x": tmp_path / "missing"}, {})
    with pytest.raises(ValidationError, match="config must be a dict"):
        dep.mlbom(release["path"], {}, {1: "a"})
    with pytest.raises(ValidationError, match="JSON values"):
        dep.mlbom(release["path"], {}, {"f": object()})
    with pytest.raises(ValidationError, match="not installed"):
        dep.mlbom(release["path"], {}, {}, packages=["no-such-distribution-xyz"])
    with pytest.raises(ValidationError, match="doc must be a dict"):
        dep.validate_mlbom(3)


def test_weights_only_refusal_names_a_file_torch_cannot_read(tmp_path):
    """A pickle named .safetensors: torch.load goes by the suffix and fails; the reason says so."""
    from utils import deployment

    path = tmp_path / "disguised.safetensors"
    path.write_bytes(b"\x80\x02}q\x00.")  # a pickle of {}
    assert deployment.weights_only_refusal(path).startswith("not a loadable torch file")
