#!/usr/bin/python3
"""Make a test CA and a server certificate for the fake API over HTTPS.

    make_certs.py DIR

writes DIR/ca.pem, DIR/ca.key, DIR/server.pem and DIR/server.key with the
openssl command line.  The server certificate is signed by the CA and
carries subjectAltName=IP:127.0.0.1,DNS:localhost.  Nothing is done when
the four files already exist.  Importable: make_certs(dir) -> dict of paths.
"""

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

NAMES = ("ca.pem", "ca.key", "server.pem", "server.key")

SERVER_EXT = """\
subjectAltName = IP:127.0.0.1,DNS:localhost
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(directory):
    """Create the CA and server files in `directory` (if missing); return their paths."""
    out = Path(directory)
    paths = {name.replace(".", "_"): str(out / name) for name in NAMES}
    # keys: ca_pem, ca_key, server_pem, server_key
    if all((out / name).exists() for name in NAMES):
        return paths
    out.mkdir(parents=True, exist_ok=True)
    # Build in a private temp dir and move the results in, so a concurrent
    # caller never sees a half-written set.
    with tempfile.TemporaryDirectory(dir=out, prefix=".certs-") as tmp:
        t = Path(tmp)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                 "-keyout", str(t / "ca.key"), "-out", str(t / "ca.pem"),
                 "-subj", "/CN=primefs test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
                 "-keyout", str(t / "server.key"), "-out", str(t / "server.csr"),
                 "-subj", "/CN=localhost")
        (t / "server.ext").write_text(SERVER_EXT)
        _openssl("x509", "-req", "-sha256", "-days", "3650", "-in", str(t / "server.csr"),
                 "-CA", str(t / "ca.pem"), "-CAkey", str(t / "ca.key"),
                 "-set_serial", "0x" + secrets.token_hex(8),
                 "-extfile", str(t / "server.ext"), "-out", str(t / "server.pem"))
        for name in NAMES:
            if name.endswith(".key"):
                os.chmod(t / name, 0o600)
            os.replace(t / name, out / name)
    return paths


def main(argv):
    if len(argv) != 2:
        print("usage: make_certs.py DIR", file=sys.stderr)
        return 2
    for path in make_certs(argv[1]).values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
