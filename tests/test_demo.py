"""scripts/demo on a mount point and state directory of its own: stop
stops every part still running, whatever has died already, and exits 0."""

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import ROOT, mounted

DEMO = str(ROOT / "scripts" / "demo")


def running(pid):
    # a zombie (killed, not yet reaped) has an empty command line
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def gone_within(pid, seconds=10):  # a bound that only catches a hang
    deadline = time.time() + seconds
    while running(pid) and time.time() < deadline:
        time.sleep(0.05)
    return not running(pid)


def test_stop_with_nothing_running(tmp_path):
    env = dict(os.environ, PRIMEFS_DEMO_STATE=str(tmp_path / "state"))
    r = subprocess.run([DEMO, "stop"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_stop_after_the_fake_api_died(tmp_path):
    state, mp = tmp_path / "state", tmp_path / "mnt"
    env = dict(os.environ, PRIMEFS_DEMO_STATE=str(state))
    pids = []
    try:
        r = subprocess.run([DEMO, str(mp)], env=env, capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert mounted(mp)
        api = int((state / "api.pid").read_text())
        sshd = int((state / "sshd" / "sshd.pid").read_text())
        pids = [api, sshd]
        hint = r.stdout
        os.kill(api, signal.SIGKILL)
        deadline = time.time() + 10  # until init has reaped it; not a hang
        while os.path.exists(f"/proc/{api}") and time.time() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f"/proc/{api}")
        r = subprocess.run([DEMO, "stop"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert not mounted(mp)
        assert gone_within(sshd), "sshd still runs"
        # the stop hint names this state directory
        assert f"PRIMEFS_DEMO_STATE={state} " in hint, hint
        # and a second stop finds nothing to do
        r = subprocess.run([DEMO, "stop"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        if mounted(mp):
            subprocess.run(["umount", "-l", str(mp)])
        for pid in pids:
            if running(pid):
                os.kill(pid, signal.SIGTERM)
