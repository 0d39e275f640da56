"""Multi-node pods on a real mount (DESIGN.md "The account: disks, SSH keys,
nodes"): the API lists a cluster as ONE pod whose sshConnection and ip are
lists, one per node, with a clusterId (APIPodConfig in the OpenAPI
description). Here one real sshd listens on 127.0.0.1 and 127.0.0.2 (same
port), so node 0 and node 1 are two endpoints, each its own SSH session and
known_hosts name (`<pod id>` and `<pod id>-1`)."""

import os
import subprocess
import time

import pytest

from sshd import Sshd


@pytest.fixture
def make_duo(tmp_path, keys, make_api, make_mount):
    """make_duo(*mount options): a mount whose account has `duo`, an ACTIVE
    two-node pod: node 0 at 127.0.0.1, node 1 at 127.0.0.2, both played by
    one sshd."""
    s = Sshd(tmp_path / "sshd", authorized_keys=[keys[1]],
             extra_config=["ListenAddress 127.0.0.2"], sftp_in_home=True)

    def make(*options):
        api = make_api("--ssh", f"root@127.0.0.1:{s.port}",
                       "--ssh-node", f"root@127.0.0.2:{s.port}",
                       "--pending-secs", "1", "--install-secs", "1")
        made = api.admin("cluster", {"name": "duo", "nodes": 2})
        m = make_mount(api, options=(f"ssh_key={keys[0]}",
                                     f"known_hosts={tmp_path / 'known_hosts'}",
                                     "ready_timeout=20", "timeout=5") + options)
        m.api, m.sshd, m.pod_id = api, s, made["id"]
        m.known_hosts = tmp_path / "known_hosts"
        m.sshd_port = s.port
        return m
    try:
        yield make
    finally:
        s.stop()


@pytest.fixture
def duo(make_duo):
    return make_duo()


def run(m, rel, script):
    with open(m.p(rel), "w") as f:
        f.write(script)


def test_cluster_is_one_pod_with_lists(duo):
    pid = duo.pod_id
    port = duo.sshd_port
    assert duo.read("pods/duo/id") == pid + "\n"
    assert duo.read("pods/duo/ssh") == (f"root@127.0.0.1 -p {port}\n"
                                        f"root@127.0.0.2 -p {port}\n")
    assert duo.read("pods/duo/ip") == "127.0.0.1\n127.0.0.2\n"
    assert sorted(os.listdir(duo.p("pods/duo/nodes"))) == ["0", "1", "all"]
    for n, ip in ((0, "127.0.0.1"), (1, "127.0.0.2")):
        d = f"pods/duo/nodes/{n}"
        assert sorted(os.listdir(duo.p(d))) == ["exit", "fs", "home", "ip", "jobs", "run", "ssh"]
        assert duo.read(d + "/ip") == ip + "\n"
        assert duo.read(d + "/ssh") == f"root@{ip} -p {port}\n"
    assert sorted(os.listdir(duo.p("pods/duo/nodes/all"))) == ["exit", "run"]
    assert not os.path.exists(duo.p("pods/duo/nodes/2"))
    assert not os.path.exists(duo.p("pods/duo/nodes/01"))
    # a single-node pod has no nodes/
    assert "nodes" not in os.listdir(duo.p("pods/demo"))
    assert not os.path.exists(duo.p("pods/demo/nodes"))


def test_each_node_runs_its_own_jobs(duo):
    run(duo, "pods/duo/nodes/1/run", "echo one $PRIME_NODE_RANK; exit 7\n")
    assert duo.read("pods/duo/nodes/1/run") == "one 1\n"
    assert duo.read("pods/duo/nodes/1/exit") == "7\n"
    assert duo.read("pods/duo/nodes/1/jobs/1/out") == "one 1\n"
    # node 0's are the pod's own: nothing ran there yet
    assert duo.read("pods/duo/exit") == "\n"
    assert duo.read("pods/duo/nodes/0/exit") == "\n"
    # the pod's run is node 0's
    run(duo, "pods/duo/run", "echo zero $PRIME_NODE_RANK $PRIME_NUM_NODES\n")
    assert duo.read("pods/duo/run") == "zero 0 2\n"
    assert duo.read("pods/duo/nodes/0/run") == "zero 0 2\n"
    assert duo.read("pods/duo/nodes/0/exit") == "0\n"
    assert duo.read("pods/duo/nodes/1/exit") == "7\n"
    assert os.listdir(duo.p("pods/duo/nodes/0/jobs")) == os.listdir(duo.p("pods/duo/jobs"))
    # each node's host key learned on its own, node 0 as the pod id
    names = [l.split()[0] for l in duo.known_hosts.read_text().splitlines()]
    assert sorted(names) == sorted([duo.pod_id, duo.pod_id + "-1"])
    # and one session per node
    s = duo.stats()
    assert s["ssh_sessions"] == 2, s
    # sshd saw one connection to each node's address
    log = duo.sshd.log_text()
    assert f"on 127.0.0.1 port {duo.sshd_port}" in log, log
    assert f"on 127.0.0.2 port {duo.sshd_port}" in log, log


def test_named_job_on_a_node(duo):
    os.mkdir(duo.p("pods/duo/nodes/1/jobs/train"))
    run(duo, "pods/duo/nodes/1/jobs/train/cmd", "echo rank $PRIME_NODE_RANK\n")
    assert duo.read("pods/duo/nodes/1/jobs/train/exit") == "0\n"
    assert duo.read("pods/duo/nodes/1/jobs/train/out") == "rank 1\n"
    # cmd is the script as written: the environment is primefs's own prefix
    assert duo.read("pods/duo/nodes/1/jobs/train/cmd") == "echo rank $PRIME_NODE_RANK\n"
    assert os.readlink(duo.p("pods/duo/nodes/1/jobs/latest")) == "train"
    assert "train" not in os.listdir(duo.p("pods/duo/jobs"))


def test_signal_a_node_job(duo):
    run(duo, "pods/duo/nodes/1/run", "echo started; sleep 60\n")
    with open(duo.p("pods/duo/nodes/1/run"), "rb", buffering=0) as f:
        assert f.read(8) == b"started\n"
    with open(duo.p("pods/duo/nodes/1/jobs/1/signal"), "w") as f:
        f.write("TERM\n")
    assert duo.read("pods/duo/nodes/1/exit") == "signal TERM\n"


def test_all_run_on_every_node(duo):
    subprocess.run(["bash", "-c",
                    "echo 'echo rank $PRIME_NODE_RANK of $PRIME_NUM_NODES "
                    "at $PRIME_MASTER_ADDR:$PRIME_MASTER_PORT; echo bye' > "
                    + duo.p("pods/duo/nodes/all/run")], check=True, timeout=60)
    out = duo.read("pods/duo/nodes/all/run")
    lines = out.splitlines()
    assert sorted(lines) == sorted([
        "[0] rank 0 of 2 at 127.0.0.1:29500", "[0] bye",
        "[1] rank 1 of 2 at 127.0.0.1:29500", "[1] bye"]), out
    # each node's lines in its own order
    assert [l for l in lines if l.startswith("[1]")][-1] == "[1] bye"
    assert duo.read("pods/duo/nodes/all/exit") == "0\n"
    # each node's job is also its own latest
    assert duo.read("pods/duo/nodes/1/run") == "rank 1 of 2 at 127.0.0.1:29500\nbye\n"
    assert duo.read("pods/duo/run") == "rank 0 of 2 at 127.0.0.1:29500\nbye\n"


def test_all_exit_is_first_failure(duo):
    run(duo, "pods/duo/nodes/all/run",
        'if [ "$PRIME_NODE_RANK" = 1 ]; then echo failing; exit 3; fi; echo fine\n')
    assert sorted(duo.read("pods/duo/nodes/all/run").splitlines()) == \
        ["[0] fine", "[1] failing"]
    assert duo.read("pods/duo/nodes/all/exit") == "3\n"
    assert duo.read("pods/duo/nodes/0/exit") == "0\n"
    assert duo.read("pods/duo/nodes/1/exit") == "3\n"


def test_all_run_whole_lines_and_partial_last(duo):
    """Lines interleave whole; a last line without a newline gets one."""
    run(duo, "pods/duo/nodes/all/run",
        "for i in 1 2 3; do printf 'a%s ' $i; sleep 0.05; printf 'b%s\\n' $i; done; "
        "printf tail\n")
    lines = duo.read("pods/duo/nodes/all/run").split("\n")
    assert lines[-1] == ""
    body = lines[:-1]
    for n in (0, 1):
        assert [l for l in body if l.startswith(f"[{n}] ")] == [
            f"[{n}] a1 b1", f"[{n}] a2 b2", f"[{n}] a3 b3", f"[{n}] tail"], body


def test_all_run_long_output(duo):
    """Much output from both nodes, with lines longer than a read: every
    line comes whole, in its node's order."""
    run(duo, "pods/duo/nodes/all/run",
        "i=0; while [ $i -lt 3000 ]; do echo \"line $i $(printf %0200d 0)\"; "
        "i=$((i+1)); done\n")
    out = subprocess.run(["cat", duo.p("pods/duo/nodes/all/run")], capture_output=True,
                         timeout=120).stdout.decode()
    lines = out.splitlines()
    pad = "0" * 200
    for n in (0, 1):
        assert [l for l in lines if l.startswith(f"[{n}] ")] == \
            [f"[{n}] line {i} {pad}" for i in range(3000)]
    assert len(lines) == 6000
    assert duo.read("pods/duo/nodes/all/exit") == "0\n"


def test_rmdir_returns_the_whole_pod(duo):
    run(duo, "pods/duo/nodes/all/run", "true\n")
    assert duo.read("pods/duo/nodes/all/exit") == "0\n"
    os.rmdir(duo.p("pods/duo"))
    assert not os.path.exists(duo.p("pods/duo"))
    listed = [p["id"] for p in duo.api.get("/pods/")["data"]]
    assert duo.pod_id not in listed
    hist = duo.api.get("/pods/history")["data"]
    assert [h["type"] for h in hist if h["id"] == duo.pod_id] == ["Cluster"]
    # a node is no directory of its own to remove
    assert "duo" not in os.listdir(duo.p("pods"))


def test_rmdir_ends_every_node_job(duo):
    """rmdir ends the jobs of every node at once: their readers see them
    lost, as the pod's own."""
    run(duo, "pods/duo/nodes/all/run", "echo started; sleep 60\n")
    readers = [subprocess.Popen(["cat", duo.p(f)], stdout=subprocess.PIPE)
               for f in ("pods/duo/nodes/1/exit", "pods/duo/nodes/0/exit",
                         "pods/duo/nodes/all/exit")]
    follow = subprocess.Popen(["cat", duo.p("pods/duo/nodes/1/run")], stdout=subprocess.PIPE)
    try:
        assert follow.stdout.read(8) == b"started\n"
        rm = subprocess.Popen(["rmdir", duo.p("pods/duo")])
        assert rm.wait(timeout=10) == 0  # a hang bound: never the 60 s job
        outs = [r.communicate(timeout=20)[0] for r in readers]
        rest, _ = follow.communicate(timeout=20)
    finally:
        for p in readers + [follow]:
            if p.poll() is None:
                p.kill()
    assert outs == [b"lost\n"] * 3
    assert rest == b""


def test_idle_counts_jobs_on_every_node(make_duo, tmp_path):
    """The idle guard judges the whole pod: a job on node 1 alone keeps it."""
    m = make_duo("pods_ttl=1", "guards_every=1", f"state={tmp_path / 'state'}")
    run(m, "pods/duo/nodes/1/run", "sleep 4; echo ok\n")
    m.write("pods/duo/idle", "2s")
    assert m.read("pods/duo/nodes/1/exit") == "0\n"  # waits for the job's end
    deletes = [r for r in m.api.requests()
               if r["method"] == "DELETE" and m.pod_id in r["path"]]
    assert not deletes, deletes  # never while node 1's job ran
    deadline = time.time() + 60  # only against a hang
    while "duo" in os.listdir(m.p("pods")):
        assert time.time() < deadline, m.log()
        time.sleep(0.1)
    assert "idle guard fired" in m.log()


def test_nodes_appear_once_the_cluster_is_up(duo):
    """A cluster rented elsewhere is listed before it has connections (no
    nodes/ then); once it is up, nodes/ shows, though the pod directory was
    looked at before."""
    multi = duo.api.get("/availability/multi-node?gpu_count=16")["items"][0]
    body = {"pod": {"name": "c16", "cloudId": multi["cloudId"], "gpuType": multi["gpuType"],
                    "socket": multi["socket"], "gpuCount": 16,
                    "dataCenterId": multi["dataCenter"]},
            "provider": {"type": multi["provider"]}}
    duo.api._call("POST", "/api/v1/pods/", body, auth=True)
    duo.write("ctl", "refresh\n")
    assert "nodes" not in os.listdir(duo.p("pods/c16"))
    assert not os.path.exists(duo.p("pods/c16/nodes"))
    deadline = time.time() + 60  # only against a hang
    while "nodes" not in os.listdir(duo.p("pods/c16")):  # as the pods refresh
        assert time.time() < deadline, duo.read("pods/c16/status")
        time.sleep(0.2)
    assert duo.read("pods/c16/ssh").count("root@") == 2
    assert os.path.isdir(duo.p("pods/c16/nodes/1"))
    assert sorted(os.listdir(duo.p("pods/c16/nodes"))) == ["0", "1", "all"]
    run(duo, "pods/c16/nodes/all/run", "echo $PRIME_NODE_RANK\n")
    assert sorted(duo.read("pods/c16/nodes/all/run").splitlines()) == ["[0] 0", "[1] 1"]


def test_created_cluster_lists_every_node(make_api):
    """A pod made from a multi-node offer: one pod, a list entry per node
    (node n at --ssh-node's endpoint), and a clusterId."""
    api = make_api("--ssh", "root@127.0.0.1:2222", "--ssh-node", "root@127.0.0.2:2223",
                   "--pending-secs", "0", "--install-secs", "0")
    multi = api.get("/availability/multi-node?gpu_count=16")["items"][0]
    body = {"pod": {"name": "c16", "cloudId": multi["cloudId"], "gpuType": multi["gpuType"],
                    "socket": multi["socket"], "gpuCount": 16,
                    "dataCenterId": multi["dataCenter"]},
            "provider": {"type": multi["provider"]}}
    made = api._call("POST", "/api/v1/pods/", body, auth=True)
    pod = api.get("/pods/" + made["id"])
    assert pod["sshConnection"] == ["root@127.0.0.1 -p 2222", "root@127.0.0.2 -p 2223"]
    assert pod["ip"] == ["127.0.0.1", "127.0.0.2"]
    assert pod["clusterId"]


def test_each_node_has_its_own_files(duo):
    """nodes/<n>/fs and home: links to hidden .fs and .home, served over
    node n's own SSH session (its node key); node 0's are the pod's."""
    home = str(duo.sshd.home)  # SFTP's "." and the jobs' HOME, as on a pod
    d1 = duo.p("pods/duo/nodes/1")
    assert os.readlink(os.path.join(d1, "fs")) == ".fs"
    assert os.readlink(os.path.join(d1, "home")) == ".home"
    assert ".fs" not in os.listdir(d1) and ".home" not in os.listdir(d1)
    # a crawl of the pod enters no node's files: no connection at all
    r = subprocess.run(["ls", "-lR", duo.p("pods/duo")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "/.fs" not in r.stdout and "/.home" not in r.stdout
    assert duo.stats().get("ssh_sessions", 0) == 0
    assert "Accepted publickey" not in duo.sshd.log_text()
    name = "from-node-1"
    try:
        with open(os.path.join(d1, "home", name), "w") as f:
            f.write("written through node 1\n")
        # node 1's session alone, learned under node 1's key, at its address
        assert duo.stats()["ssh_sessions"] == 1
        names = [l.split()[0] for l in duo.known_hosts.read_text().splitlines()]
        assert names == [duo.pod_id + "-1"], names
        conns = [l for l in duo.sshd.log_text().splitlines()
                 if l.startswith("Connection from")]
        assert len(conns) == 1 and f"on 127.0.0.2 port {duo.sshd_port}" in conns[0], conns
        run(duo, "pods/duo/nodes/1/run", f"cat ~/{name}\n")
        assert duo.read("pods/duo/nodes/1/run") == "written through node 1\n"
        assert duo.read("pods/duo/nodes/1/exit") == "0\n"
        assert open(os.path.join(d1, "fs", home.lstrip("/"), name)).read() == \
            "written through node 1\n"
        # node 0's files are the pod's own (one sshd plays both nodes here)
        assert open(duo.p("pods/duo/nodes/0/home", name)).read() == \
            "written through node 1\n"
        assert sorted(os.listdir(duo.p("pods/duo/nodes/0/home"))) == \
            sorted(os.listdir(duo.p("pods/duo/home")))
        assert os.readlink(duo.p("pods/duo/nodes/0/home")) == ".home"
        os.unlink(duo.p("pods/duo/nodes/0/home", name))
        deadline = time.time() + 10  # node 1's names are kept for fs_ttl
        while os.path.exists(os.path.join(d1, "home", name)):
            assert time.time() < deadline
            time.sleep(0.1)
        names = [l.split()[0] for l in duo.known_hosts.read_text().splitlines()]
        assert sorted(names) == sorted([duo.pod_id, duo.pod_id + "-1"])
        assert duo.stats()["ssh_sessions"] == 2
    finally:
        if os.path.exists(os.path.join(home, name)):
            os.unlink(os.path.join(home, name))
    # a node the pod does not have has no files
    assert not os.path.exists(duo.p("pods/duo/nodes/2/home"))


def test_a_crawl_never_waits_on_all_while_exit_still_waits(duo, tmp_path):
    """nodes/all/run and exit follow the crawl rule of run and exit: a
    crawl reads them as they are now (whole lines so far; exit empty while
    a node's job runs), never waiting; `cat nodes/all/exit` still waits."""
    run(duo, "pods/duo/nodes/all/run", "echo started; sleep 600\n")
    for n in (0, 1):
        deadline = time.time() + 60  # only against a hang
        while duo.read(f"pods/duo/nodes/{n}/jobs/1/out") != "started\n":
            assert time.time() < deadline
            time.sleep(0.1)
    waiter = subprocess.Popen(["cat", duo.p("pods/duo/nodes/all/exit")],
                              stdout=subprocess.PIPE)
    pod = duo.p("pods/duo")
    try:
        out = {}
        for argv in (["grep", "-r", ".", pod],
                     ["cp", "-r", pod, str(tmp_path / "copy")]):
            # a hang bound far below the jobs' 600 s
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            assert r.stderr == "", (argv, r.stderr)
            assert r.returncode == 0, argv
            out[argv[0]] = r.stdout
        assert f"{pod}/nodes/all/run:[1] started\n" in out["grep"]
        assert f"{pod}/nodes/all/exit:" not in out["grep"]
        all_dir = tmp_path / "copy" / "nodes" / "all"
        assert sorted((all_dir / "run").read_text().splitlines()) == \
            ["[0] started", "[1] started"]
        assert (all_dir / "exit").read_text() == ""
        # `cat nodes/all/exit` in a script still waits for every node's job
        assert waiter.poll() is None
        for n in (0, 1):
            with open(duo.p(f"pods/duo/nodes/{n}/jobs/1/signal"), "w") as f:
                f.write("TERM\n")
        assert waiter.communicate(timeout=60)[0] == b"signal TERM\n"
    finally:
        waiter.kill()
        waiter.wait()


def test_history_keeps_every_node_jobs(duo):
    """Once the pod is gone, history/<pod>/jobs/ are node 0's and
    history/<pod>/nodes/<n>/jobs/ node n's, read-only."""
    run(duo, "pods/duo/nodes/all/run", "echo from $PRIME_NODE_RANK\n")
    assert duo.read("pods/duo/nodes/all/exit") == "0\n"
    run(duo, "pods/duo/nodes/1/run", "echo again\n")
    assert duo.read("pods/duo/nodes/1/exit") == "0\n"
    os.rmdir(duo.p("pods/duo"))
    h = "history/duo"
    duo.write("ctl", "refresh\n")
    assert "nodes" in os.listdir(duo.p(h))
    assert sorted(os.listdir(duo.p(h, "nodes"))) == ["0", "1"]
    assert duo.read(h + "/jobs/1/out") == "from 0\n"
    assert duo.read(h + "/nodes/0/jobs/1/out") == "from 0\n"
    assert os.listdir(duo.p(h, "nodes/1/jobs")) == ["1", "2", "latest"]
    assert duo.read(h + "/nodes/1/jobs/1/out") == "from 1\n"
    assert duo.read(h + "/nodes/1/jobs/latest/out") == "again\n"
    assert duo.read(h + "/nodes/1/jobs/2/exit") == "0\n"
    assert os.listdir(duo.p(h, "nodes/1")) == ["jobs"]
    assert not os.path.exists(duo.p(h, "nodes/2"))
    assert not os.path.exists(duo.p(h, "nodes/all"))
    with pytest.raises(OSError):
        os.mkdir(duo.p(h, "nodes/1/jobs/named"))
    # a history pod no other node ran a job on has no nodes/
    assert all("nodes" not in os.listdir(duo.p("history", p))
               for p in os.listdir(duo.p("history")) if p != "duo")
