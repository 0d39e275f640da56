"""Only a deliberate mkdir rents (DESIGN.md "Pods"): real tools on a real
mount. mkdir -p's parents, cp, rsync, tar, install -d's parents and a
cross-filesystem mv are refused with EPERM and send no request; mkdir,
mkdir -p, install -d of one new pod and a program's mkdir() rent exactly
once; a program that creates inside the pod it has just made gets it
returned."""

import os
import subprocess
import sys
import tarfile
import tempfile

import pytest

from test_lifecycle import BASE, posts

TEMPLATE = BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


@pytest.fixture
def m(api, make_mount):
    mount = make_mount(api)
    mount.write("config", TEMPLATE)
    api.reset()
    return mount


@pytest.fixture
def src(tmp_path):
    """A small tree to copy: srcpod/f and srcpod/sub/g."""
    d = tmp_path / "srcpod"
    (d / "sub").mkdir(parents=True)
    (d / "f").write_text("f\n")
    (d / "sub" / "g").write_text("g\n")
    return d


def run(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=30)


def deletes(api):
    return [r for r in api.requests() if r["method"] == "DELETE"]


def assert_refused(api, m, r, name):
    assert r.returncode != 0, r
    assert posts(api) == [], "a refused mkdir sent a request"
    assert not os.path.exists(m.p("pods", name))
    log = m.log()
    assert "/pods/" + name in log and "nothing was rented" in log, log


def assert_rented_once(api, m, name):
    p = posts(api)
    assert len(p) == 1, p
    assert p[0]["body"]["pod"]["name"] == name
    assert os.path.isdir(m.p("pods", name))


def test_mkdir_p_deep_rents_nothing(api, m):
    r = run(["mkdir", "-p", "pods/a/b"], m.path)
    assert "Operation not permitted" in r.stderr
    assert_refused(api, m, r, "a")
    # The same from elsewhere, with an absolute path.
    r = run(["mkdir", "-p", m.p("pods/a2/b/c")], "/")
    assert_refused(api, m, r, "a2")


def test_install_d_deep_rents_nothing(api, m):
    assert_refused(api, m, run(["install", "-d", "pods/a/b"], m.path), "a")


@pytest.mark.parametrize("tool", [
    ["cp", "-r"], ["cp", "-a"], ["rsync", "-r"],
])
def test_copy_tools_rent_nothing(api, m, src, tool):
    r = run(tool + [str(src), "pods/"], m.path)
    assert_refused(api, m, r, "srcpod")


def test_tar_x_rents_nothing(api, m, src, tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as t:
        t.add(src, arcname="tarpod")
    r = run(["tar", "-x", "-C", "pods", "-f", str(archive)], m.path)
    assert_refused(api, m, r, "tarpod")


def test_mv_from_another_filesystem_rents_nothing(api, m):
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    d = tempfile.mkdtemp(dir=base)
    try:
        os.mkdir(os.path.join(d, "mvpod"))
        with open(os.path.join(d, "mvpod", "f"), "w") as f:
            f.write("f\n")
        r = run(["mv", os.path.join(d, "mvpod"), "pods/"], m.path)
        assert_refused(api, m, r, "mvpod")
        assert os.path.exists(os.path.join(d, "mvpod", "f"))  # nothing lost
    finally:
        subprocess.run(["rm", "-rf", d])


def test_cp_r_of_a_pod_is_a_clear_error(api, m):
    assert os.path.isdir(m.p("pods/demo"))
    r = run(["cp", "-r", "pods/demo", "pods/copy"], m.path)
    assert_refused(api, m, r, "copy")
    assert "cannot create directory" in r.stderr, r.stderr
    assert "Operation not permitted" in r.stderr, r.stderr
    assert "chmod" not in r.stderr and "preserv" not in r.stderr, r.stderr


@pytest.mark.parametrize("cmd,cwd_rel", [
    (["mkdir", "pods/x"], ""),
    (["mkdir", "-p", "pods/x"], ""),
    (["mkdir", "x"], "pods"),
    (["mkdir", "-p", "x"], "pods"),
    (["install", "-d", "pods/x"], ""),
    ([sys.executable, "-c", "import os; os.mkdir('pods/x')"], ""),
])
def test_deliberate_mkdir_rents_once(api, m, cmd, cwd_rel):
    r = run(cmd, m.p(cwd_rel) if cwd_rel else m.path)
    # install then sets the mode, and chmod is refused (EPERM): it says so
    # and exits 1, but the pod is rented.
    assert r.returncode == 0 or (cmd[0] == "install" and "permissions" in r.stderr), r
    assert_rented_once(api, m, "x")
    assert deletes(api) == []


def test_mkdir_p_absolute_rents_once(api, m):
    r = run(["mkdir", "-p", m.p("pods/x")], "/")
    assert r.returncode == 0, r
    assert_rented_once(api, m, "x")


PROGRAM = """
import os, sys
os.mkdir("pods/z")
try:
    open("pods/z/f", "w")
except OSError as e:
    print(e.errno)
"""


def test_program_that_fills_its_new_pod_gets_it_returned(api, m):
    r = run([sys.executable, "-c", PROGRAM], m.path)
    assert r.returncode == 0, r
    assert len(posts(api)) == 1
    d = deletes(api)
    assert len(d) == 1, api.requests()
    assert not os.path.exists(m.p("pods/z"))
    log = m.log()
    assert "pod z was rented a moment ago" in log and "returned" in log, log
    assert "terminated" in log, log


def test_child_of_the_renter_counts_too(api, m):
    prog = ("import os, subprocess; os.mkdir('pods/z'); "
            "subprocess.run(['cp', '/etc/hostname', 'pods/z/'])")
    r = run([sys.executable, "-c", prog], m.path)
    assert r.returncode == 0, r
    assert len(posts(api)) == 1
    assert len(deletes(api)) == 1, api.requests()
    assert not os.path.exists(m.p("pods/z"))


def test_writing_run_of_a_new_pod_keeps_it(api, m):
    """Opening a file that exists (run) is no sign of a copy; another
    process creating inside is not the renter."""
    r = run([sys.executable, "-c", "import os; os.mkdir('pods/z')"], m.path)
    assert r.returncode == 0, r
    assert run(["touch", "pods/z/new"], m.path).returncode != 0
    assert deletes(api) == []
    assert os.path.isdir(m.p("pods/z"))


def test_makedirs_of_a_deep_path_gets_its_parent_returned(api, m):
    """os.makedirs("pods/a/b") is a program's mkdir of pods/a, then of
    pods/a/b inside it: the pod it rented on the way goes back."""
    prog = "import os\ntry:\n    os.makedirs('pods/a/b')\nexcept OSError:\n    pass\n"
    r = run([sys.executable, "-c", prog], m.path)
    assert r.returncode == 0, r
    assert len(posts(api)) == 1
    assert len(deletes(api)) == 1, api.requests()
    assert not os.path.exists(m.p("pods/a"))
    assert "pod a was rented a moment ago" in m.log()
