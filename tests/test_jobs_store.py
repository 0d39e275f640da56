"""The job store on a real mount with a real sshd: every job run through
`run` is recorded on local disk under the state directory (cmd, out, meta),
outlives the mount (numbering goes on, one running at unmount is `lost`),
and all outputs together stay under -o jobs_keep= with the oldest ended
ones dropped first, never a running one (DESIGN.md "Jobs")."""

import json
import os
import time


def mount(make_api, make_mount, pod, keys, tmp_path, api=None, home=None,
          extra=()):
    api = api or make_api("--ssh", f"root@127.0.0.1:{pod.port}")
    m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                 f"known_hosts={tmp_path / 'known_hosts'}",
                                 "ready_timeout=20", "timeout=5") + tuple(extra),
                   home=home)
    m.api = api
    return m


def run(m, cmd, pod="demo"):
    with open(m.p("pods", pod, "run"), "w") as f:
        f.write(cmd + "\n")


def records(m, pod="demo"):
    pid = m.read("pods", pod, "id").strip()
    return os.path.join(m.home, ".local", "state", "primefs", "jobs", pid)


def meta_at(d, name):
    with open(os.path.join(d, name, "meta")) as f:
        return json.load(f)


def meta(m, name, pod="demo"):
    return meta_at(records(m, pod), name)


def out(m, name, pod="demo"):
    with open(os.path.join(records(m, pod), name, "out"), "rb") as f:
        return f.read()


def wait_for(cond, timeout=15):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "not within %s s (a hang)" % timeout
        time.sleep(0.05)


def test_jobs_are_recorded_and_outlive_the_mount(make_api, make_mount, pod, keys,
                                                 tmp_path):
    m = mount(make_api, make_mount, pod, keys, tmp_path)
    run(m, "echo one; exit 3")
    assert m.read("pods/demo/exit") == "3\n"
    run(m, "echo two")
    assert m.read("pods/demo/exit") == "0\n"
    d = records(m)
    assert sorted(os.listdir(d)) == ["1", "2"]
    with open(os.path.join(d, "1", "cmd")) as f:
        assert f.read() == "echo one; exit 3\n"
    assert out(m, "1") == b"one\n"
    first = meta(m, "1")
    assert first["state"] == "exited" and first["exit"] == "3\n"
    assert first["name"] == "1" and first["started"] > 0 and first["ended"] > 0
    run(m, "echo three; sleep 100")
    with open(m.p("pods/demo/run"), "rb", buffering=0) as f:
        assert f.read(100) == b"three\n"
    assert meta(m, "3")["state"] == "running"
    assert out(m, "3") == b"three\n"  # on disk as it arrives
    home = m.home
    m.stop()

    m2 = mount(make_api, make_mount, pod, keys, tmp_path, api=m.api, home=home)
    # The job running at unmount is lost now; run and exit follow it.
    assert meta(m2, "3")["state"] == "lost"
    assert m2.read("pods/demo/exit") == "lost\n"
    assert m2.read("pods/demo/run").startswith("three\n")
    assert meta(m2, "1")["exit"] == "3\n"
    # Numbers are not reused after a remount.
    run(m2, "echo four")
    assert m2.read("pods/demo/run") == "four\n"
    assert sorted(os.listdir(records(m2))) == ["1", "2", "3", "4"]
    # Written (and fsynced) just after readers see the end.
    wait_for(lambda: meta(m2, "4")["state"] == "exited")


def test_cap_drops_oldest_ended_outputs_never_a_running_one(make_api, make_mount,
                                                            pod, keys, tmp_path):
    # About 2 KiB for all outputs together.
    m = mount(make_api, make_mount, pod, keys, tmp_path, extra=("jobs_keep=0.002",))
    run(m, "head -c 1500 /dev/zero | tr '\\0' a; echo")
    assert m.read("pods/demo/exit") == "0\n"
    run(m, "head -c 1500 /dev/zero | tr '\\0' b; echo")
    assert m.read("pods/demo/exit") == "0\n"
    # Over the cap: the older one went, with the marker; the newer stays.
    wait_for(lambda: meta(m, "1").get("dropped"))
    assert out(m, "1").startswith(b"[primefs: output dropped to keep jobs under ")
    assert out(m, "2") == b"b" * 1500 + b"\n"
    wait_for(lambda: "output dropped" in m.log())  # logged just after
    # A running job's output is never dropped, even over the cap alone.
    run(m, "head -c 3000 /dev/zero | tr '\\0' c; echo; sleep 100")
    wait_for(lambda: len(out(m, "3")) == 3001)
    run(m, "echo small")
    assert m.read("pods/demo/exit") == "0\n"
    wait_for(lambda: meta(m, "2").get("dropped") and meta(m, "4").get("dropped"))
    assert meta(m, "3")["state"] == "running"
    assert out(m, "3") == b"c" * 3000 + b"\n"
    assert not meta(m, "3").get("dropped")


def test_pod_deleted_elsewhere_its_running_job_is_recorded_lost(make_api, make_mount,
                                                                pod, keys, tmp_path):
    m = mount(make_api, make_mount, pod, keys, tmp_path)
    added = m.api.admin("pods", {"add": [{"name": "extra", "sshConnection": pod.conn}]})
    extra = added["added"][0]
    m.write("ctl", "refresh\n")
    run(m, "echo started; sleep 100", pod="extra")
    with open(m.p("pods/extra/run"), "rb", buffering=0) as f:
        assert f.read(100) == b"started\n"
    d = records(m, "extra")
    m.api.admin("pods", {"delete": [extra]})
    m.write("ctl", "refresh\n")
    assert "extra" not in os.listdir(m.p("pods"))
    wait_for(lambda: meta_at(d, "1")["state"] != "running")
    rec = meta_at(d, "1")
    assert rec["state"] == "lost" and rec["exit"] == "lost\n"
    with open(os.path.join(d, "1", "out"), "rb") as f:
        assert f.read().startswith(b"started\n")
