"""disks/ and disk_offers/ (DESIGN.md "The account"): a disk's mkdir sends
POST /disks/ from the template's disk.* keys (the fake checks the body
against the OpenAPI description), rmdir deletes it, EBUSY with nothing sent
while a live pod uses it; `disks = a` attaches at a pod's mkdir, choosing
among the offers the API's `disks` filter gives; disk_offers/ shows each
disk offer; a disk's cost grows as it bills."""

import errno
import json
import os
import time

import pytest

from conftest import err_of

BASE = "max_pods = 100\n"


def disk_offers(api):
    return api.get("/availability/disks?page_size=100")["items"]


def reqs(api, method, suffix):
    return [r for r in api.requests()
            if r["method"] == method and r["path"].rstrip("/").endswith(suffix)]


@pytest.fixture
def m(api, make_mount):
    return make_mount(api)


def make_disk(m, name, template):
    m.write("config", BASE + template)
    os.mkdir(m.p("disks", name))


def test_disk_offers_show_each_offer(api, m):
    offers = disk_offers(api)
    names = sorted(os.listdir(m.p("disk_offers")))
    assert len(names) == len(offers)
    seen = set()
    for n in names:
        d = json.loads(m.read("disk_offers", n, "json"))
        seen.add((d["provider"], d["dataCenter"]))
        assert "e" not in m.read("disk_offers", n, "price")
        assert float(m.read("disk_offers", n, "price")) == pytest.approx(d["spec"]["pricePerUnit"])
        assert m.read("disk_offers", n, "provider") == (d["provider"] or "") + "\n"
        assert m.read("disk_offers", n, "data_center") == (d["dataCenter"] or "") + "\n"
        assert m.read("disk_offers", n, "country") == (d["country"] or "") + "\n"
        assert m.read("disk_offers", n, "stock") == (d["stockStatus"] or "") + "\n"
        assert m.read("disk_offers", n, "max_size") == "%d\n" % d["spec"]["maxCount"]
    assert seen == {(o["provider"], o["dataCenter"]) for o in offers}


def test_disk_create_and_delete(api, m):
    offers = [o for o in disk_offers(api) if o["stockStatus"] != "Unavailable"]
    cheapest = min(offers, key=lambda o: o["spec"]["pricePerUnit"])
    make_disk(m, "data", "disk.size = 50\n")
    body = reqs(api, "POST", "/disks")[-1]["body"]
    assert body["disk"]["size"] == 50 and body["disk"]["name"] == "data"
    assert body["provider"]["type"] == cheapest["provider"]
    assert body["disk"].get("dataCenterId") == cheapest["dataCenter"]
    # shown at once, from the answer
    assert os.listdir(m.p("disks")) == ["data"]
    assert m.read("disks", "data", "size") == "50\n"
    assert m.read("disks", "data", "name") == "data\n"
    assert m.read("disks", "data", "status") == "ACTIVE\n"
    assert m.read("disks", "data", "pods") == "\n" or m.read("disks", "data", "pods") == ""
    disk_id = m.read("disks", "data", "id").strip()
    assert api.get("/disks/%s" % disk_id)["size"] == 50
    assert err_of(lambda: os.mkdir(m.p("disks", "data"))) == errno.EEXIST
    os.rmdir(m.p("disks", "data"))
    assert reqs(api, "DELETE", "/disks/%s" % disk_id)
    assert os.listdir(m.p("disks")) == []
    assert "deleted" in m.log()


def test_disk_offer_and_place_keys(api, m):
    offers = disk_offers(api)
    target = [o for o in offers if o["stockStatus"] != "Unavailable"][-1]
    name = [n for n in os.listdir(m.p("disk_offers"))
            if json.loads(m.read("disk_offers", n, "json")) == target][0]
    make_disk(m, "a", "disk.size = 10\ndisk.offer = %s\n" % name)
    assert reqs(api, "POST", "/disks")[-1]["body"]["disk"].get("dataCenterId") == target["dataCenter"]
    make_disk(m, "b", "disk.size = 10\ndisk.country = %s\n" % target["country"])
    body = reqs(api, "POST", "/disks")[-1]["body"]
    assert body["disk"]["country"] == target["country"]


def test_disk_without_size_sends_nothing(api, m):
    m.write("config", BASE)
    assert err_of(lambda: os.mkdir(m.p("disks", "x"))) == errno.EINVAL
    assert not reqs(api, "POST", "/disks")
    assert "disk.size" in m.log()


def test_incidental_mkdir_makes_no_disk(api, m, tmp_path):
    m.write("config", BASE + "disk.size = 10\n")
    src = tmp_path / "d"
    (src / "inner").mkdir(parents=True)
    import subprocess
    subprocess.run(["cp", "-r", str(src), m.p("disks")], capture_output=True)
    assert not reqs(api, "POST", "/disks")


def test_attach_at_mkdir_and_busy(api, m):
    make_disk(m, "data", "disk.size = 20\ndisk.data_center = US-WA-1\n")
    disk_id = m.read("disks", "data", "id").strip()
    dc = api.get("/disks/%s" % disk_id)["info"]["dataCenterId"]
    assert dc == "US-WA-1"
    # the cheapest A100_80GB is elsewhere: only the disks filter brings
    # the pod to the disk
    m.write("config", BASE + "gpu_type = A100_80GB\ndisks = data\n")
    try:
        os.mkdir(m.p("pods", "p1"))
    except OSError as e:
        pytest.fail("mkdir: %s; log:\n%s" % (e, m.log()))
    post = reqs(api, "POST", "/pods")[-1]["body"]
    assert post["disks"] == [disk_id]
    assert post["pod"]["dataCenterId"] == dc
    # the offers were asked with the API's disks filter
    assert any(r["query"].get("disks") == [disk_id]
               for r in reqs(api, "GET", "/availability/gpus"))
    assert m.read("disks", "data", "pods") == "p1\n"     # at once
    before = len(reqs(api, "DELETE", "/disks/%s" % disk_id))
    assert err_of(lambda: os.rmdir(m.p("disks", "data"))) == errno.EBUSY
    assert len(reqs(api, "DELETE", "/disks/%s" % disk_id)) == before
    assert "p1" in m.log()
    os.rmdir(m.p("pods", "p1"))
    os.rmdir(m.p("disks", "data"))
    assert len(reqs(api, "DELETE", "/disks/%s" % disk_id)) == before + 1


def test_attach_unknown_disk_rents_nothing(api, m):
    m.write("config", BASE + "disks = nosuch\n")
    assert err_of(lambda: os.mkdir(m.p("pods", "p"))) == errno.ENOENT
    assert not reqs(api, "POST", "/pods")


def test_disk_cost_grows(api, m):
    make_disk(m, "big", "disk.size = 5000\n")
    price = float(m.read("disks", "big", "price"))
    assert price > 0
    c1 = float(m.read("disks", "big", "cost"))
    deadline = time.time() + 30
    while float(m.read("disks", "big", "cost")) <= c1 and time.time() < deadline:
        time.sleep(0.5)
    assert float(m.read("disks", "big", "cost")) > c1


def test_deleted_disk_in_history(api, m):
    assert os.listdir(m.p("history"))      # held now: the rmdir must show anyway
    make_disk(m, "old", "disk.size = 10\n")
    disk_id = m.read("disks", "old", "id").strip()
    os.rmdir(m.p("disks", "old"))
    assert disk_id in os.listdir(m.p("history")) or "old" in os.listdir(m.p("history"))
    assert m.read("history", disk_id, "id") == disk_id + "\n"
    assert m.read("history", disk_id, "name") == "old\n"
    assert "size" in os.listdir(m.p("history", disk_id))
    assert "jobs" not in os.listdir(m.p("history", disk_id))
    assert err_of(lambda: os.stat(m.p("history", disk_id, "jobs"))) == errno.ENOENT


def test_fake_refuses_what_the_server_would(api):
    """The fake's disk endpoints: 422 on a body off the description, 404 on
    an unknown id."""
    import urllib.error
    with pytest.raises(urllib.error.HTTPError) as e:
        api._call("POST", "/api/v1/disks/", {"disk": {"size": -1}, "provider": {"type": "runpod"}},
                  auth=True)
    assert e.value.code == 422
    with pytest.raises(urllib.error.HTTPError) as e:
        api._call("POST", "/api/v1/disks/", {"disk": {"size": 5, "bogus": 1},
                                             "provider": {"type": "runpod"}}, auth=True)
    assert e.value.code == 422
    for method in ("GET", "DELETE"):
        with pytest.raises(urllib.error.HTTPError) as e:
            api._call(method, "/api/v1/disks/nosuch", auth=True)
        assert e.value.code == 404
