"""Certificates and keys for the local control plane, made with the ``openssl`` CLI, and the
kubeconfigs that carry them.

The ``cryptography`` package is not a dependency of this project, and ``openssl`` is on
every machine that can build the toolchain, so the CLI is used. Keys are ECDSA P-256:
generating them is instant, and kube-apiserver accepts them for serving, client
certificates and service-account token signing.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ClientIdentity", "Pki", "PkiError"]

_DAYS = "3650"


class PkiError(RuntimeError):
    """openssl is missing or failed."""


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """A client certificate: ``user`` becomes the request's user, ``groups`` its groups."""

    user: str
    groups: tuple[str, ...] = ()

    @property
    def file_stem(self) -> str:
        """File name stem of this identity's key and certificate."""
        return "client-" + "".join(ch if ch.isalnum() else "-" for ch in self.user)


@dataclass(frozen=True, slots=True)
class Pki:
    """The files of one control plane's PKI under ``directory``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """CA that signs the serving and client certificates."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """Key of :attr:`ca_cert`."""
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        """kube-apiserver's serving certificate (127.0.0.1 and localhost)."""
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        """Key of :attr:`serving_cert`."""
        return self.directory / "apiserver.key"

    @property
    def service_account_key(self) -> Path:
        """Private key that signs service-account tokens."""
        return self.directory / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        """Public key that verifies service-account tokens."""
        return self.directory / "sa.pub"

    def client_cert(self, identity: ClientIdentity) -> Path:
        """Certificate file of ``identity``."""
        return self.directory / f"{identity.file_stem}.crt"

    def client_key(self, identity: ClientIdentity) -> Path:
        """Key file of ``identity``."""
        return self.directory / f"{identity.file_stem}.key"

    def kubeconfig(
        self, *, server: str, cluster: str, identity: ClientIdentity, context: str
    ) -> dict[str, Any]:
        """A kubeconfig document (its one context current) that trusts this CA for
        ``server`` and signs in as ``identity``; the files are embedded, so it works anywhere."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "server": server,
                        "certificate-authority-data": _b64(self.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": identity.user,
                    "user": {
                        "client-certificate-data": _b64(self.client_cert(identity)),
                        "client-key-data": _b64(self.client_key(identity)),
                    },
                }
            ],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": cluster, "user": identity.user},
                }
            ],
            "current-context": context,
        }

    def write_kubeconfig(
        self, path: Path, *, server: str, cluster: str, identity: ClientIdentity, context: str
    ) -> None:
        """Write :meth:`kubeconfig` to ``path``, readable by this user only (it holds a key)."""
        config = self.kubeconfig(server=server, cluster=cluster, identity=identity, context=context)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def ensure(self, identities: list[ClientIdentity]) -> None:
        """Create whatever is missing; existing files are kept so a restart reuses them."""
        if shutil.which("openssl") is None:
            raise PkiError("openssl is not installed (apt-get install openssl)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            self._new_key(self.ca_key)
            self._openssl(
                "req", "-x509", "-new", "-key", str(self.ca_key), "-sha256", "-days", _DAYS,
                "-subj", "/CN=arc-zfs-cache-local-ca", "-out", str(self.ca_cert),
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            )  # fmt: skip
        if not (self.serving_cert.exists() and self.serving_key.exists()):
            self._issue(
                self.serving_key,
                self.serving_cert,
                "/CN=kube-apiserver",
                [
                    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,"
                    "DNS:kubernetes.default,DNS:kubernetes.default.svc",
                    "extendedKeyUsage=serverAuth",
                ],
            )
        if not (self.service_account_key.exists() and self.service_account_pub.exists()):
            self._new_key(self.service_account_key)
            self._openssl(
                "pkey", "-in", str(self.service_account_key), "-pubout",
                "-out", str(self.service_account_pub),
            )  # fmt: skip
        for identity in identities:
            if self.client_cert(identity).exists() and self.client_key(identity).exists():
                continue
            subject = "/CN=" + identity.user + "".join(f"/O={g}" for g in identity.groups)
            self._issue(
                self.client_key(identity),
                self.client_cert(identity),
                subject,
                ["extendedKeyUsage=clientAuth"],
            )

    def _issue(self, key: Path, cert: Path, subject: str, extensions: list[str]) -> None:
        self._new_key(key)
        csr = cert.with_suffix(".csr")
        ext_file = cert.with_suffix(".ext")
        ext_file.write_text("\n".join(["basicConstraints=critical,CA:FALSE", *extensions]) + "\n")
        self._openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
        self._openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(self.ca_key),
            "-CAcreateserial", "-sha256", "-days", _DAYS, "-extfile", str(ext_file),
            "-out", str(cert),
        )  # fmt: skip
        csr.unlink()
        ext_file.unlink()

    def _new_key(self, path: Path) -> None:
        self._openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(path),
        )  # fmt: skip
        path.chmod(0o600)

    @staticmethod
    def _openssl(*args: str) -> None:
        result = subprocess.run(
            ["openssl", *args], capture_output=True, text=True, check=False, timeout=60
        )
        if result.returncode != 0:
            raise PkiError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
