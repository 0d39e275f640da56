"""Runs the core's C unit tests (TAP), one pytest test per program, so that
they count in the same summary as the mount tests."""

import os
import subprocess

import pytest

from conftest import BUILD, HERE

UNITS = ["test_util", "test_sftp_proto", "test_model", "test_naming", "test_cache", "test_api",
         "test_template", "test_log", "test_intent", "test_choose",
         "test_jobs_store", "test_snapindex", "test_log_keep",
         "test_pending", "test_budget", "test_inodes", "test_podfiles"]
UNITS += ["test_watchers"]

UNITS += ["test_sshkeys"]  # ssh_keys/ and plan/


@pytest.mark.parametrize("name", UNITS)
def test_unit(name):
    exe = BUILD / "tests" / "unit" / name
    wrapper = os.environ.get("PRIMEFS_WRAPPER", "").split()
    r = subprocess.run(wrapper + [str(exe), str(HERE / "fixtures")],
                       capture_output=True, text=True, timeout=300)
    failed = [l for l in r.stdout.splitlines() if l.startswith("not ok")]
    assert r.returncode == 0 and not failed, r.stdout[-4000:] + r.stderr[-4000:]
    assert "\nok " in "\n" + r.stdout
