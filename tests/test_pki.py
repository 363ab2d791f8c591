"""localcluster.pki.Pki.kubeconfig: the one kubeconfig document of the control plane's and the
storage's identities, as lightkube (the clients of the local cluster) reads it."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import yaml
from lightkube import KubeConfig

from localcluster.pki import ClientIdentity, Pki

_IDENTITY = ClientIdentity("arc-zfs-cache:harness", ("system:masters",))
_SERVER = "https://127.0.0.1:6443"


def _pki(tmp_path: Path) -> Pki:
    # Stand-ins for openssl's files: the document embeds their bytes, whatever they are.
    pki = Pki(tmp_path)
    pki.ca_cert.write_bytes(b"ca certificate")
    pki.client_cert(_IDENTITY).write_bytes(b"client certificate")
    pki.client_key(_IDENTITY).write_bytes(b"client key")
    return pki


def _decoded(value: str | None) -> bytes:
    assert value is not None
    return base64.b64decode(value)


def test_kubeconfig_selects_its_context_and_embeds_the_ca_and_the_identity(
    tmp_path: Path,
) -> None:
    doc = _pki(tmp_path).kubeconfig(
        server=_SERVER, cluster="local", identity=_IDENTITY, context="local-harness"
    )
    config = KubeConfig.from_dict(doc).get()
    assert config is not None
    assert config.context_name == "local-harness"
    assert config.cluster.server == _SERVER
    assert _decoded(config.cluster.certificate_auth_data) == b"ca certificate"
    assert config.user is not None
    assert _decoded(config.user.client_cert_data) == b"client certificate"
    assert _decoded(config.user.client_key_data) == b"client key"
    assert doc["users"][0]["name"] == _IDENTITY.user


def test_write_kubeconfig_writes_the_document_readable_by_its_owner_only(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    path = tmp_path / "harness.kubeconfig"
    pki.write_kubeconfig(
        path, server=_SERVER, cluster="local", identity=_IDENTITY, context="local-harness"
    )
    assert yaml.safe_load(path.read_text()) == pki.kubeconfig(
        server=_SERVER, cluster="local", identity=_IDENTITY, context="local-harness"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
