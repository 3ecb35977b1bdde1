"""Test certificates made with the ``openssl`` command: a CA, a second unrelated CA, a
server certificate for 127.0.0.1/localhost, an expired one, and a client certificate.

Every certificate is issued with ``openssl ca`` (the expired one with ``-startdate`` and
``-enddate`` in the past), EC P-256 keys so that making them takes well under a second.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Validity of the expired certificate: January 2020.
EXPIRED = ("20200101000000Z", "20200201000000Z")

_CA_CONF = """\
[ca]
default_ca = ca_default

[ca_default]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/issued
serial = {dir}/serial
certificate = {dir}/ca.pem
private_key = {dir}/ca.key
default_md = sha256
default_days = 30
policy = policy_any
unique_subject = no

[policy_any]
commonName = supplied

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files (each key file next to its certificate, ``.key``)."""

    ca: Path
    other_ca: Path
    server: Path
    expired_server: Path
    client: Path

    @staticmethod
    def key(cert: Path) -> Path:
        """The private key of ``cert``."""
        return cert.with_suffix(".key")


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _ca(dir: Path, name: str) -> Path:
    dir.mkdir(parents=True)
    (dir / "issued").mkdir()
    (dir / "index.txt").write_text("")
    (dir / "serial").write_text("1000\n")
    conf = dir / "ca.cnf"
    conf.write_text(_CA_CONF.format(dir=dir))
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", dir / "ca.key", "-out", dir / "ca.pem", "-days", "30",
        "-subj", f"/CN={name}", "-config", conf, "-extensions", "ca_ext",
    )  # fmt: skip
    return dir / "ca.pem"


def _issue(
    ca: Path, out: Path, cn: str, ext: str, dates: tuple[str, str] | None = None
) -> Path:
    csr = out.with_suffix(".csr")
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", out.with_suffix(".key"), "-out", csr, "-subj", f"/CN={cn}",
    )  # fmt: skip
    when = ["-startdate", dates[0], "-enddate", dates[1]] if dates else []
    _openssl(
        "ca", "-batch", "-notext", "-config", ca.parent / "ca.cnf", "-extensions", ext,
        "-in", csr, "-out", out, *when,
    )  # fmt: skip
    return out


def make_pki(dir: Path) -> Pki:
    """Make every certificate under ``dir`` (about half a second)."""
    ca = _ca(dir / "ca", "kexecwatch test CA")
    other = _ca(dir / "other-ca", "some other CA")
    return Pki(
        ca=ca,
        other_ca=other,
        server=_issue(ca, dir / "server.pem", "collector", "server_ext"),
        expired_server=_issue(
            ca, dir / "expired.pem", "collector", "server_ext", EXPIRED
        ),
        client=_issue(ca, dir / "client.pem", "web-1", "client_ext"),
    )
