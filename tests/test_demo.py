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


def readme_template():
    """The template README.md's "Rent, use, return" pastes into config."""
    text = (ROOT / "README.md").read_text()
    block = text.split("cat > /mnt/prime/config <<'EOF'\n", 1)[1].split("    EOF\n", 1)[0]
    return "".join(l[4:] + "\n" for l in block.splitlines())


def test_readme_template_remount_and_stop_names_the_guards(tmp_path):
    state, mp, run = tmp_path / "state", tmp_path / "mnt", tmp_path / "run"
    run.mkdir()
    env = dict(os.environ, PRIMEFS_DEMO_STATE=str(state), XDG_RUNTIME_DIR=str(run))
    pids = []
    try:
        r = subprocess.run([DEMO, str(mp)], env=env, capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "scripts/demo remount" in r.stdout
        pids = [int((state / "api.pid").read_text()),
                int((state / "sshd" / "sshd.pid").read_text())]
        # The README's template, pasted as it is, rents in the demo.
        (mp / "config").write_text(readme_template())
        os.mkdir(mp / "pods" / "bench")
        assert (mp / "pods" / "bench" / "status").read_text().strip()
        (mp / "pods" / "bench" / "deadline").write_text("+2h\n")
        pods = sorted(os.listdir(mp / "pods"))
        assert subprocess.run(["fusermount3", "-u", str(mp)]).returncode == 0
        assert not mounted(mp)

        # remount finds the state the start used (recorded in the run
        # directory), and the same fake API: nothing vanished.
        env2 = {k: v for k, v in env.items() if k != "PRIMEFS_DEMO_STATE"}
        r = subprocess.run([DEMO, "remount"], env=env2, capture_output=True, text=True,
                           timeout=120, cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert mounted(mp)
        # (the fake API's own pods move through their states meanwhile)
        assert {"bench", "demo"} <= set(os.listdir(mp / "pods")), pods
        assert "deadline: terminates at" in (mp / "pods" / "bench" / "guards").read_text()
        assert "bench" in (mp / "log").read_text()  # the first mount's lines too

        # stop says which guards stay armed, and for which pods.
        r = subprocess.run([DEMO, "stop"], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "bench: deadline: terminates at" in r.stdout, r.stdout
        assert not mounted(mp)
    finally:
        if mounted(mp):
            subprocess.run(["umount", "-l", str(mp)])
        for pid in pids:
            if running(pid):
                os.kill(pid, signal.SIGTERM)
