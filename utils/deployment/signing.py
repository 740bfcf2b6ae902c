"""Signing a model file with OpenSSF's ``model_signing`` and a local key, offline.

:func:`make_keypair` writes an EC P-256 key pair (PEM) with ``cryptography``; :func:`sign`
writes a signature bundle (a DSSE envelope over an in-toto statement of the file's sha256,
no transparency log) with ``model_signing.signing.Config().use_elliptic_key_signer``;
:func:`verify` checks it with ``use_elliptic_key_verifier`` and raises
:class:`SignatureError`, naming the file, when the key or the bytes do not match.
Nothing here contacts Sigstore or the network (``model_signing`` needs ``pyopenssl``
installed for the local-key path).

Taught in 07_secure_deployment.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from utils import validation as v
from utils.deployment.serialization import existing_file, new_file


class KeyPair(NamedTuple):
    """The two PEM files of a key pair: ``private`` (keep it secret) and ``public``
    (give it to whoever verifies) (taught in 07_secure_deployment)."""

    private: Path
    public: Path


class SignatureError(ValueError):
    """A file does not match its signature, or the signature is not by the expected key
    (taught in 07_secure_deployment). ``.path`` is the file, ``.reason`` what failed."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"verify: '{self.path.name}' failed signature verification: {reason}")


def make_keypair(folder: str | Path, name: str = "publisher", *, overwrite: bool = False) -> KeyPair:
    """Generate an EC P-256 key pair and write ``folder/name.key.pem`` (private, PKCS#8, not
    encrypted: for the course only) and ``folder/name.pub.pem`` (taught in 07_secure_deployment)."""
    where = "make_keypair"
    if not isinstance(folder, (str, os.PathLike)):
        v.fail(where, f"folder is a {type(folder).__name__}", "folder must be a path (str or pathlib.Path)")
    folder = Path(folder)
    if not folder.is_dir():
        v.fail(where, f"folder = '{folder}' is not an existing folder", "create the folder first")
    if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
        v.fail(where, f"name = {name!r}", "name must be a non-empty word of letters, digits, '-' or '_'")
    keys = KeyPair(folder / f"{name}.key.pem", folder / f"{name}.pub.pem")
    if not overwrite and any(p.exists() for p in keys):
        v.fail(where, f"'{keys.private.name}' or '{keys.public.name}' exists in '{folder}'",
               "choose another name or folder, or pass overwrite=True")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    keys.private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    os.chmod(keys.private, 0o600)
    keys.public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return keys


def _pem(path: Any, name: str, where: str, kind: str) -> Path:
    path = existing_file(path, name, where)
    head = path.read_bytes()[:64]
    marker = b"-----BEGIN PUBLIC KEY-----" if kind == "public" else b"PRIVATE KEY-----"
    if not head.startswith(b"-----BEGIN") or (marker not in head):
        v.fail(where, f"{name} = '{path.name}' is not a PEM {kind} key",
               f"{name} must be the {kind} key file from make_keypair")
    return path


def sign(model_path: str | Path, private_key: str | Path, signature_path: str | Path) -> Path:
    """Sign the file ``model_path`` with the PEM private key and write the signature bundle to
    ``signature_path`` (JSON); returns ``signature_path`` (taught in 07_secure_deployment)."""
    where = "sign"
    model_path = existing_file(model_path, "model_path", where)
    private_key = _pem(private_key, "private_key", where, "private")
    signature_path = new_file(signature_path, "signature_path", where)
    if signature_path.absolute() == model_path.absolute():
        v.fail(where, "signature_path is the model file", "write the signature to another file")
    import model_signing

    model_signing.signing.Config().use_elliptic_key_signer(private_key=private_key).sign(model_path, signature_path)
    return signature_path


def verify(model_path: str | Path, public_key: str | Path, signature_path: str | Path) -> bool:
    """Check that ``model_path`` is exactly the file the holder of the private key signed.

    Returns ``True``; raises :class:`SignatureError` (naming the file) when the signature was
    made with another key, the file's bytes changed, or the signature file is not one.
    Taught in 07_secure_deployment.
    """
    where = "verify"
    model_path = existing_file(model_path, "model_path", where)
    public_key = _pem(public_key, "public_key", where, "public")
    signature_path = existing_file(signature_path, "signature_path", where)
    import model_signing

    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    try:
        verifier.verify(model_path, signature_path)
    except ValueError as e:
        text = str(e)
        if text.startswith("Key mismatch"):
            reason = "the signature was made with another key than the public key given"
        elif text.startswith("Signature mismatch"):
            reason = "its sha256 differs from the one that was signed (the file changed after signing)"
        else:
            reason = f"the signature does not verify ({text.splitlines()[0][:200]})"
        raise SignatureError(model_path, reason) from None
    except (KeyError, TypeError) as e:  # not a signature bundle at all
        raise SignatureError(model_path, f"'{signature_path.name}' is not a signature bundle "
                                         f"({type(e).__name__}: {e})") from None
    return True
