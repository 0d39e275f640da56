"""The Debian package (debian/, built by scripts/package from a copy of the
source): it installs /usr/bin/primefs, the man page and the systemd units,
and lintian reports no error. Installed into a throwaway root with dpkg -x
(no container); skipped only where dpkg-buildpackage is missing (CI
installs it, and debhelper and lintian: scripts/install-deps)."""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("dpkg-buildpackage"),
                                reason="dpkg-buildpackage is not installed")


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb")
    r = subprocess.run([str(ROOT / "scripts" / "package"), str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    path = r.stdout.strip().splitlines()[-1]
    assert path.startswith(str(out)) and path.endswith(".deb"), r.stdout
    return path


def test_the_source_tree_gets_no_build_files(deb):
    # it was built in a copy
    assert not (ROOT / "debian" / "primefs").exists()
    assert not (ROOT / "obj-x86_64-linux-gnu").exists()
    assert not list((ROOT / "debian").glob("*.substvars"))


def test_installs_binary_man_page_and_units(deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", deb, str(root)], check=True)
    r = subprocess.run([str(root / "usr/bin/primefs"), "--version"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("primefs "), r.stdout + r.stderr
    if shutil.which("man"):
        r = subprocess.run(["man", "-w", "primefs"], capture_output=True, text=True,
                           env=dict(os.environ, MANPATH=str(root / "usr/share/man")))
        assert r.returncode == 0 and r.stdout.strip().startswith(str(root)), r.stdout + r.stderr
    assert (root / "usr/share/man/man1/primefs.1.gz").exists()
    system = (root / "lib/systemd/system/primefs@.service").read_text()
    user = (root / "usr/lib/systemd/user/primefs@.service").read_text()
    for unit in (system, user):
        assert "ExecStart=/usr/bin/primefs -f %f" in unit
        assert "Restart=on-failure" in unit
    # depends on fuse3 (fusermount3, mount.fuse3) and the libraries
    r = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True)
    for dep in ("fuse3", "libfuse3", "libcurl4", "libssh2", "libjson-c"):
        assert dep in r.stdout, r.stdout


def test_lintian_reports_no_error(deb):
    r = subprocess.run(["lintian", deb], capture_output=True, text=True, timeout=600)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    assert not errors, r.stdout
