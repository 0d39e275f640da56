"""mkdir rents a pod from the template, rmdir returns it, never twice: the
choice of offer, the POST body, every errno, lost answers, concurrency,
the template file itself, and cycles under injected faults."""

import errno
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import err_of

from test_tree import all_offers, all_pages

BASE = "max_pods = 100\n"

CREATE_KEYS = ["name", "cloudId", "gpuType", "socket", "gpuCount", "diskSize",
               "vcpus", "memory", "image", "dataCenterId", "maxPrice", "country",
               "security", "jupyterPassword", "autoRestart", "customTemplateId",
               "envVars"]


def price(o):
    p = o["prices"]
    return p["communityPrice"] if p["communityPrice"] is not None else p["onDemand"]


def fitting_offers(api, gpu_type, image="ubuntu_22_cuda_12", **want):
    """The offers DESIGN.md lets mkdir pick, cheapest first, from the API."""
    fits = []
    for o in all_offers(api):
        if (o["gpuType"] != gpu_type or o.get("stockStatus") in (None, "Unavailable")
                or price(o) is None or o.get("prepaidTime")):
            continue
        if bool(o.get("isSpot")) != bool(want.get("spot")):
            continue
        if any(o.get(k) != v for k, v in want.items() if k != "spot" and k != "max_price"):
            continue
        if "max_price" in want and price(o) > want["max_price"]:
            continue
        if image and o.get("images") and image not in o["images"]:
            continue
        fits.append(o)
    return sorted(fits, key=price)


def expected_offer(api, gpu_type, **want):
    fits = fitting_offers(api, gpu_type, **want)
    return fits[0] if fits else None


def same_offer(pod_body, o):
    return (pod_body["cloudId"] == o["cloudId"] and pod_body["socket"] == o["socket"]
            and pod_body["gpuCount"] == o["gpuCount"]
            and pod_body["dataCenterId"] == o.get("dataCenter")
            and pod_body["security"] == o["security"])


def posts(api):
    return [r for r in api.requests() if r["method"] == "POST" and r["path"].rstrip("/").endswith("/pods")]


@pytest.fixture
def life(api, make_mount):
    return make_mount(api)


def rent(m, name, template):
    m.write("config", BASE + template)
    os.mkdir(m.p("pods", name))


@pytest.mark.parametrize("template,want", [
    ("gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n", {}),
    ("gpu_type = H100_80GB\nsocket = PCIe\nimage = ubuntu_22_cuda_12\n", {"socket": "PCIe"}),
    ("gpu_type = A100_80GB\nsecurity = community_cloud\nimage = ubuntu_22_cuda_12\n",
     {"security": "community_cloud"}),
    ("gpu_type = A100_80GB\nsecurity = secure_cloud\nimage = ubuntu_22_cuda_12\n",
     {"security": "secure_cloud"}),
    ("gpu_type = RTX4090_24GB\nspot = true\nimage = ubuntu_22_cuda_12\n", {"spot": True}),
    ("gpu_type = H100_80GB\nprovider = hyperstack\nimage = ubuntu_22_cuda_12\n",
     {"provider": "hyperstack"}),
    ("gpu_type = H100_80GB\ngpu_count = 8\nimage = ubuntu_22_cuda_12\n", {"gpuCount": 8}),
])
def test_mkdir_picks_the_right_offer(api, life, template, want):
    gpu = template.split("\n")[0].split("= ")[1]
    exp = expected_offer(api, gpu, **want)
    assert exp is not None, "the fake has an offer for this template"
    api.reset()
    rent(life, "bench", template)
    body = posts(api)[-1]["body"]
    pod = body["pod"]
    assert list(pod.keys()) == CREATE_KEYS  # PRIME_API.md 5.4, in order
    assert list(body.keys()) == ["pod", "provider", "disks", "team"]
    assert pod["name"] == "bench"
    # The cheapest; among equally cheap offers, any.
    ties = [o for o in fitting_offers(api, gpu, **want) if price(o) == price(exp)]
    exp = next((o for o in ties if same_offer(pod, o)), exp)
    assert pod["cloudId"] == exp["cloudId"]
    assert pod["gpuType"] == exp["gpuType"]
    assert pod["socket"] == exp["socket"]
    assert pod["gpuCount"] == exp["gpuCount"]
    assert pod["dataCenterId"] == exp.get("dataCenter")
    assert pod["security"] == exp["security"]
    assert body["provider"] == ({"type": exp["provider"]} if exp["provider"] else {})
    assert pod["diskSize"] == exp["disk"]["defaultCount"]
    assert pod["vcpus"] == exp["vcpu"]["defaultCount"]
    assert pod["memory"] == exp["memory"]["defaultCount"]
    assert pod["maxPrice"] is None and pod["autoRestart"] is False
    assert body["disks"] is None and body["team"] is None
    # The directory exists at once, without a new listing.
    assert life.read("pods/bench/status") in ("PENDING\n", "INSTALLING\n", "ACTIVE\n")
    # The fake prices the pod from the first offer with the body's keys
    # (spot twins share them); it is one of those.
    twins = [price(o) for o in all_offers(api) if same_offer(pod, o) and o["gpuType"] == gpu]
    assert float(life.read("pods/bench/price")) in twins


def test_mkdir_lifecycle_status_and_rmdir(make_api, make_mount):
    # PENDING for 3 s: time enough to see it even on a busy machine.
    api = make_api("--pending-secs", "3", "--install-secs", "0.5")
    m = make_mount(api, options=("pods_ttl=0.2",))
    # With env vars, runpod offers and ubuntu_22_cuda_12 are out (the CLI's
    # rule): an image some other H100 offer has.
    image = next(i for o in fitting_offers(api, "H100_80GB", image=None)
                 if o["provider"] != "runpod" for i in o.get("images") or []
                 if i != "ubuntu_22_cuda_12")
    rent(m, "bench", "gpu_type = H100_80GB\nimage = %s\n"
                     "disk_size = 200\nenv.HF_TOKEN = secret=1\n" % image)
    body = posts(api)[-1]["body"]["pod"]
    assert body["diskSize"] == 200
    assert body["envVars"] == [{"key": "HF_TOKEN", "value": "secret=1"}]
    assert m.read("pods/bench/status") == "PENDING\n"
    pid = m.read("pods/bench/id").strip()
    deadline = time.time() + 30  # only against a hang
    while m.read("pods/bench/status") != "ACTIVE\n" and time.time() < deadline:
        time.sleep(0.1)
    assert m.read("pods/bench/status") == "ACTIVE\n"
    api.reset()
    os.rmdir(m.p("pods/bench"))
    assert not os.path.exists(m.p("pods/bench"))
    assert pid not in [p["id"] for p in all_pages(api, "/pods")]
    deletes = [r for r in api.requests() if r["method"] == "DELETE"]
    assert len(deletes) == 1 and deletes[0]["path"].endswith(pid)
    m.write("ctl", "refresh\n")
    assert "bench" in os.listdir(m.p("history"))  # by name, unique there
    assert m.read("history", pid, "id") == pid + "\n"
    assert "terminated" in m.log()


def test_eexist(api, life):
    life.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    api.reset()
    assert err_of(lambda: os.mkdir(life.p("pods/demo"))) == errno.EEXIST
    assert err_of(lambda: os.mkdir(life.p("pods/cm9zq1x2a0006l508abcdefgh"))) == errno.EEXIST
    assert posts(api) == []


@pytest.mark.parametrize("name", ["New folder", "a b", "x:y", "caf\u00e9", ".hidden", "tab\tname"])
def test_einval_names_send_nothing(api, life, name):
    life.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    api.reset()
    assert err_of(lambda: os.mkdir(life.p("pods", name))) == errno.EINVAL
    assert sum(api.counts().values()) == 0  # not even a listing
    assert "nothing was rented" in life.log()


def test_mkdir_elsewhere_refused(api, life):
    assert err_of(lambda: os.mkdir(life.p("availability/foo"))) == errno.EPERM
    assert err_of(lambda: os.mkdir(life.p("foo"))) == errno.EPERM
    assert err_of(lambda: os.mkdir(life.p("pods/demo/x"))) in (errno.EPERM, errno.ENOTDIR)
    assert posts(api) == []


def test_enospc_reason_in_log(api, life):
    rent_err = err_of(lambda: rent(life, "cheap", "gpu_type = H100_80GB\nmax_price = 0.001\n"))
    assert rent_err == errno.ENOSPC
    assert "max_price" in life.log()
    assert err_of(lambda: rent(life, "nope", "gpu_type = NOPE_1GB\n")) == errno.ENOSPC
    assert "NOPE_1GB" in life.log()
    assert posts(api) == []


def test_no_gpu_type_is_einval(api, life):
    assert err_of(lambda: rent(life, "x", "")) == errno.EINVAL
    assert "gpu_type" in life.log()


def test_edquot_max_pods(api, life):
    life.write("config", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")  # max_pods 4
    assert err_of(lambda: os.mkdir(life.p("pods/five"))) == errno.EDQUOT
    assert "max_pods" in life.log()
    assert posts(api) == []


def test_edquot_payment_required(api, life):
    api.admin("balance", {"balance": 0})
    assert err_of(lambda: rent(life, "broke", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")) \
        == errno.EDQUOT
    assert "HTTP 402" in life.log()
    assert len(posts(api)) == 1


def test_422_is_einval_with_details(api, life):
    life.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    os.listdir(life.p("availability/H100_80GB"))  # offers cached
    api.admin("offers", {"remove": {"gpuType": "H100_80GB"}})  # gone behind our back
    assert err_of(lambda: os.mkdir(life.p("pods/late"))) == errno.EINVAL
    assert "HTTP 422" in life.log() and "No available offer" in life.log()


def test_lost_post_answer_creates_one_pod(api, life):
    api.fault(kind="drop_post", count=1)
    rent(life, "lost", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    assert len(posts(api)) == 1  # never sent twice
    assert [p["name"] for p in all_pages(api, "/pods")].count("lost") == 1
    assert os.path.isdir(life.p("pods/lost"))
    assert "answer was lost" in life.log()


def test_lost_post_answer_and_no_pod_is_an_error(api, life):
    api.fault(kind="500", match="POST /pods", count=1)
    assert err_of(lambda: rent(life, "never", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")) \
        == errno.EIO
    assert len(posts(api)) == 1
    assert "never" not in [p["name"] for p in all_pages(api, "/pods")]


def test_concurrent_mkdir_one_pod(api, life):
    life.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    api.fault(kind="slow", delay=0.5, match="POST /pods")
    results = []

    def go():
        results.append(err_of(lambda: os.mkdir(life.p("pods/twin"))))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, errno.EEXIST, errno.EEXIST, errno.EEXIST]
    assert len(posts(api)) == 1
    assert [p["name"] for p in all_pages(api, "/pods")].count("twin") == 1


def test_rmdir_errors(api, life):
    assert err_of(lambda: os.rmdir(life.p("availability"))) == errno.EPERM
    assert err_of(lambda: os.rmdir(life.p("pods"))) == errno.EPERM
    assert err_of(lambda: os.rmdir(life.p("pods/demo/status"))) == errno.ENOTDIR
    hid = os.listdir(life.p("history"))[0]
    assert err_of(lambda: os.rmdir(life.p("history", hid))) == errno.EPERM
    assert err_of(lambda: os.rmdir(life.p("pods/nope"))) == errno.ENOENT
    assert not [r for r in api.requests() if r["method"] == "DELETE"]


def test_rmdir_by_id_and_already_gone(api, life):
    pid = life.read("pods/pending-1/id").strip()
    os.rmdir(life.p("pods", pid))
    assert not os.path.exists(life.p("pods/pending-1"))
    # Deleted in the web UI meanwhile: 404 means gone, and rmdir succeeds.
    pid2 = life.read("pods/error-1/id").strip()
    api.admin("pods", {"delete": [pid2]})
    os.rmdir(life.p("pods/error-1"))
    assert not os.path.exists(life.p("pods/error-1"))


def test_pod_removed_elsewhere_disappears(api, make_mount):
    m = make_mount(api, options=("pods_ttl=0.3",))
    pid = m.read("pods/demo/id").strip()
    api.admin("pods", {"delete": [pid]})
    time.sleep(1.5)  # past pods_ttl and the kernel's entry cache
    assert "demo" not in os.listdir(m.p("pods"))
    assert not os.path.exists(m.p("pods/demo"))


def test_template_file(api, life):
    good = "# mine\ngpu_type = H100_80GB\n[big-*]\ngpu_count = 8\n"
    life.write("config", good)
    assert life.read("config") == good
    path = os.path.join(life.home, ".config", "primefs", "config")
    with open(path) as f:
        assert f.read() == good
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    for bad in ("gpu_typo = x\n", "gpu_count = many\n", "[big-[\ngpu_count = 8\n",
                "security = maybe\n"):
        with pytest.raises(OSError) as e:
            life.write("config", bad)
        assert e.value.errno == errno.EINVAL
        assert life.read("config") == good  # the old one kept
    assert "the old template is kept: line 1" in life.log()
    assert os.stat(life.p("config")).st_size == len(good)
    # Written in pieces, it is checked whole at close.
    with open(life.p("config"), "w") as f:
        f.write("gpu_type = ")
        f.flush()
        f.write("A100_80GB\n")
    assert life.read("config") == "gpu_type = A100_80GB\n"


def test_bad_config_fails_at_write_in_bash(api, life):
    """bash ignores close errors: a line bad alone fails the write itself,
    so `echo bad > config` reports it, and the old template is kept."""
    good = "gpu_type = H100_80GB\n[big-*]\ngpu_count = 8\n"
    life.write("config", good)
    for cmd in ("echo 'gpu_typo = x' > config",
                "printf 'gpu_type = H100_80GB\\nmax_price = cheap\\n' > config",
                "echo 'max_pods = -3' >> config"):
        r = subprocess.run(["bash", "-c", cmd], cwd=life.path, capture_output=True, text=True)
        assert r.returncode != 0, cmd
        assert "Invalid argument" in r.stderr, (cmd, r.stderr)
        assert life.read("config") == good, cmd
    assert "refused at write" in life.log()
    # Good lines, in any number of writes, still pass; appending too.
    r = subprocess.run(["bash", "-c", "printf 'gpu_type = A100_80GB\\n' > config; "
                        "echo 'max_price = 3' >> config"], cwd=life.path)
    assert r.returncode == 0
    assert life.read("config") == "gpu_type = A100_80GB\nmax_price = 3\n"


def test_template_sections_by_glob(api, life):
    rent(life, "big-1", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"
                        "[big-*]\ngpu_count = 8\n")
    assert posts(api)[-1]["body"]["pod"]["gpuCount"] == 8
    os.mkdir(life.p("pods/small-1"))
    small = posts(api)[-1]["body"]["pod"]
    cheapest = fitting_offers(api, "H100_80GB")
    best = [o for o in cheapest if price(o) == price(cheapest[0])]
    assert any(same_offer(small, o) for o in best)
    assert all(o["gpuCount"] != 8 for o in best)  # the section did not apply


def test_config_option_names_the_file(api, make_mount, tmp_path):
    cfg = tmp_path / "tmpl"
    cfg.write_text(BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    m = make_mount(api, options=("config=" + str(cfg),))
    assert m.read("config") == cfg.read_text()
    os.mkdir(m.p("pods/viaopt"))
    assert posts(api)[-1]["body"]["pod"]["name"] == "viaopt"


def test_cycles_under_faults_no_duplicate_no_leak(api, make_mount):
    m = make_mount(api, options=("timeout=20",))
    m.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    api.fault(kind="500", rate=0.2)
    api.fault(kind="reset", rate=0.1)
    api.fault(kind="drop_post", rate=0.3)
    names = [f"cycle-{i}" for i in range(10)]
    for name in names:
        for _ in range(10):  # mkdir until it exists (EIO may mean "maybe")
            e = err_of(lambda: os.mkdir(m.p("pods", name)))
            if e in (0, errno.EEXIST):
                break
            assert e in (errno.EIO, errno.EAGAIN, errno.ETIMEDOUT), e
            m.write("ctl", "refresh\n")
        for _ in range(10):  # rmdir until it is gone
            e = err_of(lambda: os.rmdir(m.p("pods", name)))
            if e in (0, errno.ENOENT):
                break
            assert e in (errno.EIO, errno.EAGAIN, errno.ETIMEDOUT), e
            m.write("ctl", "refresh\n")
    api.clear_faults()
    live = [p["name"] for p in all_pages(api, "/pods")]
    hist = [h["name"] for h in all_pages(api, "/pods/history")]
    for name in names:
        assert name not in live, "leaked " + name
        # Once at most: a create answered 500 with nothing made keeps its
        # name taken (never twice), so the loop's next mkdir is EEXIST
        # and its rmdir makes it unwanted: that name is never created.
        assert hist.count(name) <= 1, "%s created %d times" % (name, hist.count(name))
    assert sum(hist.count(name) for name in names) >= 1


# ---- money exact: stock, maxPrice, image, offer =, gone pods, context ----

def _offer_match(o):
    return {k: o.get(k) for k in ("cloudId", "gpuType", "socket", "provider", "dataCenter",
                                  "gpuCount", "security", "isSpot")}


def test_unavailable_is_never_rented(api, life):
    tmpl = "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"
    cheapest = expected_offer(api, "H100_80GB")
    api.admin("offers", {"set_stock": {"match": _offer_match(cheapest),
                                       "stockStatus": "Unavailable"}})
    api.reset()
    life.write("ctl", "refresh\n")
    rent(life, "stockless", tmpl)
    pod = posts(api)[-1]["body"]["pod"]
    assert not (same_offer(pod, cheapest) and price(cheapest) == float(life.read("pods/stockless/price")))
    chosen = [o for o in all_offers(api) if same_offer(pod, o) and o["gpuType"] == "H100_80GB"]
    assert chosen and all(o["stockStatus"] != "Unavailable" for o in chosen)


@pytest.mark.parametrize("gpu", ["H100_80GB", "A100_80GB", "RTX4090_24GB"])
def test_max_price_is_sent_and_default_image(api, life, gpu):
    exp = expected_offer(api, gpu, image=None)
    api.reset()
    life.write("config", BASE + "gpu_type = %s\nmax_price = 100\n" % gpu)
    rc = err_of(lambda: os.mkdir(life.p("pods", "capped")))
    imgs = exp.get("images") or []
    if not imgs or "ubuntu_22_cuda_12" in imgs or len(imgs) == 1:
        assert rc == 0, life.log()
        pod = posts(api)[-1]["body"]["pod"]
        assert pod["maxPrice"] == 100
        assert pod["image"] == (imgs[0] if len(imgs) == 1 else "ubuntu_22_cuda_12")
    else:
        # several images and not the default: EINVAL, the choices in log
        assert rc == errno.EINVAL and posts(api) == []
        assert "one of: " + " ".join(imgs) in life.log()


def test_offer_key_rents_exactly_that_offer(api, life):
    d = life.p("availability", "A100_80GB")
    names = [n for n in sorted(os.listdir(d))
             if life.read("availability", "A100_80GB", n, "stock") not in ("\n", "Unavailable\n")
             and life.read("availability", "A100_80GB", n, "price") != "\n"
             and "ubuntu_22_cuda_12\n" in life.read("availability", "A100_80GB", n, "images")]
    # not the cheapest one: the key must win over the price
    cheapest = os.path.basename(os.readlink(life.p("cheapest", "A100_80GB")))
    name = next(n for n in reversed(names) if n != cheapest)
    want = json.loads(life.read("availability", "A100_80GB", name, "json"))
    api.reset()
    rent(life, "exact", "gpu_type = H100_80GB\noffer = A100_80GB/%s\n" % name)
    pod = posts(api)[-1]["body"]["pod"]
    assert same_offer(pod, want) and pod["gpuType"] == "A100_80GB"
    # still checked against max_price: nothing is sent
    api.reset()
    life.write("config", BASE + "offer = A100_80GB/%s\nmax_price = 0.0001\n" % name)
    assert err_of(lambda: os.mkdir(life.p("pods", "exact2"))) == errno.ENOSPC
    assert posts(api) == []
    assert "max_price" in life.log()


def test_deleting_pod_frees_its_name(api, life):
    life.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    pid = api.admin("pods", {"add": [{"name": "reborn", "status": "DELETING"}]})["added"][0]
    life.write("ctl", "refresh\n")
    assert "reborn" not in os.listdir(life.p("pods"))
    assert err_of(lambda: os.stat(life.p("pods", pid))) == errno.ENOENT
    api.reset()
    os.mkdir(life.p("pods", "reborn"))      # not EEXIST
    assert len(posts(api)) == 1


def test_max_pods_counts_billing_states_only(api, life):
    for st in ("STOPPED", "ERROR", "UNKNOWN", "DELETING"):
        api.admin("pods", {"add": [{"status": st}]})
    listed = all_pages(api, "/pods")
    # (the fixture lists one id twice: primefs counts that pod once)
    billing = len({p["id"] for p in listed
                   if p["status"] in ("PROVISIONING", "PENDING", "ACTIVE", "STOPPED")})
    life.write("config", "max_pods = %d\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"
               % (billing + 1))
    life.write("ctl", "refresh\n")
    os.mkdir(life.p("pods", "one-more"))
    assert err_of(lambda: os.mkdir(life.p("pods", "two-more"))) == errno.EDQUOT, life.log()


def test_prime_context_null_team_clears_team(api, make_mount, tmp_path):
    home = tmp_path / "home"
    (home / ".prime" / "environments").mkdir(parents=True)
    (home / ".prime" / "config.json").write_text(json.dumps({"team_id": "cteamfromconfig0000000000"}))
    (home / ".prime" / "environments" / "solo.json").write_text(json.dumps({"team_id": None}))
    for ctx, team in (("solo", None), (None, {"teamId": "cteamfromconfig0000000000"})):
        env = {"PRIME_CONTEXT": ctx} if ctx else {}
        m = make_mount(api, home=str(home), env=env)
        m.write("config", BASE + "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
        api.reset()
        os.mkdir(m.p("pods", "ctx-%s" % (ctx or "none")))
        assert posts(api)[-1]["body"]["team"] == team
        m.stop()
