"""Deploying a model securely: safe file formats, scanners, signatures, a load gate, an ML-BOM.

- :mod:`utils.deployment.serialization`: a pickle whose payload runs on load (shown safely,
  in a subprocess), ``torch.load(weights_only=True)``, safetensors save and strict load.
- :mod:`utils.deployment.scanners`: modelscan, picklescan and fickling behind one verdict.
- :mod:`utils.deployment.signing`: OpenSSF ``model_signing`` with a local key, offline.
- :mod:`utils.deployment.gate`: hash pinned, signature verified, scanner verdict, safe load.
- :mod:`utils.deployment.mlbom`: a CycloneDX 1.6 bill of materials of a model, validated.
- :mod:`utils.deployment.container`: hadolint, and the Dockerfile hardening it does not check.

Taught in 07_secure_deployment.
"""
from utils.deployment import container
from utils.deployment.gate import STEPS, GateRefusal, GateStep, load_gate
from utils.deployment.mlbom import locked_packages, mlbom, validate_mlbom
from utils.deployment.scanners import (SCANNERS, Verdict, scan, scan_all, scan_fickling, scan_modelscan,
                                       scan_picklescan, verdict_table)
from utils.deployment.serialization import (PAYLOADS, is_safetensors, load_weights, make_benign_checkpoint,
                                            make_malicious_pickle, same_weights, save_weights, sha256_file,
                                            unsafe_load_in_subprocess, weights_mismatch, weights_only_refusal)
from utils.deployment.signing import KeyPair, SignatureError, make_keypair, sign, verify

__all__ = ["container", "STEPS", "GateRefusal", "GateStep", "load_gate", "locked_packages", "mlbom", "validate_mlbom",
           "SCANNERS", "Verdict", "scan", "scan_all", "scan_fickling", "scan_modelscan", "scan_picklescan",
           "verdict_table", "PAYLOADS", "is_safetensors", "load_weights", "make_benign_checkpoint",
           "make_malicious_pickle", "same_weights", "save_weights", "sha256_file", "unsafe_load_in_subprocess",
           "weights_mismatch", "weights_only_refusal", "KeyPair", "SignatureError", "make_keypair", "sign",
           "verify"]
