"""The command line: --version, --help, options, and the argument form an
fstab line of type fuse.primefs produces."""

import os
import subprocess

from conftest import PRIMEFS


def test_version_names_the_four_libraries():
    r = subprocess.run([str(PRIMEFS), "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].startswith("primefs ")
    for lib in ("libfuse", "libcurl", "json-c", "libssh2"):
        assert any(l.startswith(lib + " ") for l in lines), lib


def test_help_lists_every_option():
    r = subprocess.run([str(PRIMEFS), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for opt in ("cafile=", "config=", "key_file=", "known_hosts=", "ssh_key=",
                "pods_ttl=", "offers_ttl=", "timeout=", "ready_timeout=", "output_cap="):
        assert opt in r.stdout, opt
    assert "PRIME_API_KEY" in r.stdout


def test_man_page_names_every_option():
    man = (PRIMEFS.parent.parent / "man" / "primefs.1")
    text = man.read_text() if man.exists() else ""
    for opt in ("cafile=", "config=", "key_file=", "known_hosts=", "ssh_key=",
                "pods_ttl=", "offers_ttl=", "timeout=", "ready_timeout=", "output_cap="):
        assert opt.replace("=", "") in text, opt


def test_fstab_form_source_then_mountpoint(api, make_mount):
    # mount.fuse3 runs "primefs SOURCE MOUNTPOINT -o ...".
    m = make_mount(api, source="primefs")
    assert "demo" in os.listdir(m.p("pods"))


def test_bad_option_values_refused(tmp_path):
    r = subprocess.run([str(PRIMEFS), "-f", str(tmp_path), "-o", "timeout=0"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "timeout" in r.stderr
