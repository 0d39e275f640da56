"""plan/<name>: the dry run of mkdir pods/<name> — the offer mkdir would
rent now with the template (its path, price, image) and the next
candidates, or why none fits; nothing is sent but listings. Each plan is
checked against what mkdir then rents."""

import errno
import os

import pytest

from conftest import err_of


def plan(m, name):
    out = {"next": []}
    for line in m.read("plan", name).splitlines():
        key, _, value = line.partition(" =")
        value = value.strip()
        if key == "next":
            out["next"].append(value)
        else:
            out[key] = value
    return out


def posts(api):
    return [r for r in api.requests()
            if r["method"] == "POST" and r["path"].rstrip("/").endswith("/pods")]


@pytest.fixture
def full(make_api, make_mount):
    api = make_api("--dataset", "full")
    return api, make_mount(api)


def check_agrees(api, m, name, config):
    m.write("config", "max_pods = 100\n" + config)
    api.reset()
    p = plan(m, name)
    assert p["offer"], p
    assert all(r["method"] == "GET" for r in api.requests())   # listings only
    # the candidates: cheapest first, none cheaper than the chosen one
    prices = [float(p["price"])] + [float(n.split()[1]) for n in p["next"]]
    assert prices == sorted(prices) and len(p["next"]) <= 5
    if "why" in p:       # an offer, but no image to choose: mkdir says so
        assert err_of(lambda: os.mkdir(m.p("pods", name))) == errno.EINVAL
        assert p["why"] in m.log() and posts(api) == []
        return p
    os.mkdir(m.p("pods", name))
    body = posts(api)[-1]["body"]["pod"]
    rented = "availability/" + m.read("pods", name, "offer").strip()
    assert rented == p["offer"]
    assert body.get("image", "ubuntu_22_cuda_12") == p["image"]
    offer_dir = m.p(*p["offer"].split("/"))
    with open(os.path.join(offer_dir, "price")) as f:
        assert float(f.read()) == float(p["price"])
    with open(os.path.join(offer_dir, "cloud_id")) as f:
        assert f.read().strip() == body["cloudId"]
    return p


@pytest.mark.parametrize("config,name", [
    ("gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n", "bench"),
    ("gpu_type = H100_80GB\n", "noimage"),
    ("gpu_type = A100_80GB\nsecurity = secure_cloud\n", "secure"),
    ("gpu_type = RTX4090_24GB\nspot = true\n", "spotty"),
    ("gpu_type = H100_80GB\nprepaid = true\n", "prepaid"),
    ("gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n[big-*]\ngpu_count = 8\n", "big-1"),
    ("gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n[big-*]\ngpu_count = 8\n", "small"),
])
def test_plan_is_what_mkdir_rents(full, config, name):
    api, m = full
    check_agrees(api, m, name, config)


def test_plan_max_price_and_sections(full):
    api, m = full
    m.write("config", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    p = plan(m, "x")
    cheapest, second = float(p["price"]), float(p["next"][0].split()[1])
    # max_price just under the cheapest: nothing; at the cheapest: it
    p = check_agrees(api, m, "capped", "gpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\nmax_price = %s\n" % cheapest)
    assert float(p["price"]) == cheapest
    assert all(float(n.split()[1]) <= cheapest for n in p["next"])
    # a section changes the plan of the names it matches only
    cfg = "gpu_type = H100_80GB\n[big-*]\ngpu_count = 8\n"
    m.write("config", "max_pods = 100\n" + cfg)
    assert plan(m, "big-2")["offer"] != plan(m, "little")["offer"]
    assert second >= cheapest


def test_plan_says_why_none_fits(full):
    api, m = full
    m.write("config", "max_pods = 100\ngpu_type = H100_80GB\nmax_price = 0.01\n")
    p = plan(m, "cheap")
    assert p["offer"] == ""
    assert "fits max_price = 0.01" in p["why"], p
    assert p["next"] == []
    # mkdir fails with the same reason in log, and sends nothing
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "cheap"))) == errno.ENOSPC
    assert posts(api) == []
    assert p["why"] in m.log()
    m.write("config", "max_pods = 100\ngpu_type = NO_SUCH_GPU\n")
    assert "no offer of gpu_type NO_SUCH_GPU" in plan(m, "cheap")["why"]
    m.write("config", "max_pods = 100\n")
    assert "sets no gpu_type" in plan(m, "cheap")["why"]


def test_plan_lists_nothing_and_takes_safe_names(full):
    api, m = full
    assert os.listdir(m.p("plan")) == []
    m.write("config", "gpu_type = H100_80GB\n")
    assert plan(m, "any.name-1")["offer"].startswith("availability/H100_80GB/")
    assert err_of(lambda: m.read("plan", ".hidden")) == errno.ENOENT
    assert err_of(lambda: m.write("plan/x", "y")) in (errno.EACCES, errno.EPERM)
