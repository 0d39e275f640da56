"""Tests for the fake Prime Intellect API (tests/fake_api.py).

Run: /usr/bin/python3 -m pytest tests/test_fake_api.py

Each server runs as a subprocess; requests go through urllib/http.client
so the tests see exactly what a client on the wire sees.
"""

import http.client
import json
import os
import re
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fake_api  # noqa: E402
import make_certs  # noqa: E402
import openapi_check  # noqa: E402

FAKE = HERE / "fake_api.py"
FIXTURES = HERE / "fixtures"
KEY = "test-key"
SSH = "root@127.0.0.1:2222"
SSH_CONN = "root@127.0.0.1 -p 2222"

N_RECORDED, N_LEGACY, N_GENERATED = 8, 79, 300

POD_R_KEYS = {"id", "name", "gpuName", "gpuCount", "status", "createdAt", "providerType",
              "socket", "type", "resources", "ip"}
OFFER_R_KEYS = {"cloudId", "gpuType", "socket", "provider", "country", "gpuCount", "gpuMemory",
                "disk", "vcpu", "memory", "interconnect", "stockStatus", "security", "prices",
                "images"}
HISTORY_R_KEYS = {"id", "name", "providerType", "type", "createdAt", "gpuName", "gpuCount",
                  "priceHr", "userId", "totalBilledPrice"}
STATUS_R_KEYS = {"podId", "providerType", "status", "ip"}

CUID = re.compile(r"^c[a-z0-9]{24}$")


def load(rel):
    return json.loads((FIXTURES / rel).read_text())


class Fake:
    """One fake API server process."""

    def __init__(self, *args, tls=None):
        self.log = tempfile.TemporaryFile()       # stderr must never fill a pipe
        cmd = [sys.executable, str(FAKE), *args]
        if tls:
            cmd += ["--tls-cert", tls["server_pem"], "--tls-key", tls["server_key"]]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert ready, "fake API printed no port"
        self.port = int(self.proc.stdout.readline())
        self.base = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.ctx = ssl.create_default_context(cafile=tls["ca_pem"]) if tls else None

    def request(self, method, path, body=None, key=KEY, headers=None, timeout=10, raw=False):
        """-> (status, headers, parsed JSON or raw bytes)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json", "User-Agent": "prime-cli/0.6.26 python/3.11.2"}
        if key is not None:
            hdrs["Authorization"] = "Bearer " + key
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx) as r:
                status, rh, payload = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, e.headers, e.read()
        if raw:
            return status, rh, payload
        return status, rh, (json.loads(payload) if payload else None)

    def api(self, method, path, body=None, **kw):
        return self.request(method, "/api/v1" + path, body, **kw)

    def get(self, path, **kw):
        status, _, data = self.api("GET", path, **kw)
        assert status == 200, (path, status, data)
        return data

    def admin(self, name, body=None):
        status, _, data = self.request("POST" if body is not None else "GET",
                                       "/_admin/" + name, body, key=None)
        assert status == 200, (name, status, data)
        return data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        rc = self.proc.wait(10)
        self.proc.stdout.close()
        self.log.close()
        return rc


def all_pages(fake, endpoint, query="", page_size=100):
    """Page like the CLI (4.1); returns (items, totalCount, pages fetched)."""
    items, page, total = [], 1, None
    while True:
        d = fake.get("%s?%spage=%d&page_size=%d" % (endpoint, query, page, page_size))
        assert total in (None, d["totalCount"]), "totalCount changed between pages"
        total = d["totalCount"]
        if not d["items"]:
            break
        items += d["items"]
        if len(items) >= total:
            break
        page += 1
        assert page < 1000, "paging does not end"
    return items, total, page


# --------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def srv():
    """A read-only server shared by the tests that change nothing."""
    fake = Fake("--pods", "5", "--ssh", SSH)
    yield fake
    assert fake.stop() == 0


@pytest.fixture
def fresh():
    """Factory of private servers for tests that change state."""
    started = []

    def start(*args, **kw):
        fake = Fake(*args, **kw)
        started.append(fake)
        return fake
    yield start
    for fake in started:
        assert fake.stop() == 0, "server did not exit cleanly on SIGTERM"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs.make_certs(tmp_path_factory.mktemp("certs"))


# --------------------------------------------------------------------------
# availability

def test_gpus_paging_totals(srv):
    items, total, pages = all_pages(srv, "/availability/gpus")
    assert total == N_RECORDED + N_LEGACY + N_GENERATED == len(items)
    assert pages == 4
    # a page past the end: no items, still the true count
    d = srv.get("/availability/gpus?page=99&page_size=100")
    assert d == {"items": [], "totalCount": total}
    # smaller pages give the same list, in the same order
    small, total2, pages2 = all_pages(srv, "/availability/gpus", page_size=7)
    assert total2 == total and small == items and pages2 == -(-total // 7)
    # page_size is at most 100 (the description's maximum); page and
    # page_size default to 1 and 100
    assert srv.api("GET", "/availability/gpus?page=1&page_size=1000")[0] == 422
    assert srv.get("/availability/gpus")["items"] == items[:100]
    # the recorded fixture items come first, unchanged
    assert items[:N_RECORDED] == load("availability_response.json")["items"]


def test_gpus_bad_page_is_422(srv):
    for q in ("page=0", "page=x", "page_size=0", "gpu_count=many", "gpu_type=NOPE_1GB",
              "regions=mars", "page_size=101"):
        status, _, data = srv.api("GET", "/availability/gpus?" + q)
        assert status == 422, q
        # the description's ErrorResponse, naming the parameter
        assert data == {"errors": [{"param": q.split("=")[0], "details": data["errors"][0]["details"]}]}


def test_multinode_paging_totals(srv):
    items, total, pages = all_pages(srv, "/availability/multi-node", page_size=2)
    assert total == len(items) >= 4
    assert pages == -(-total // 2)
    assert {o["gpuCount"] for o in items} <= {16, 32}
    assert {o["gpuType"] for o in items} == {"H100_80GB", "A100_80GB"}
    assert srv.get("/availability/multi-node?page=%d&page_size=2" % (pages + 1)) == \
        {"items": [], "totalCount": total}


@pytest.mark.parametrize("query, keep", [
    ("gpu_type=H100_80GB&", lambda o: o["gpuType"] == "H100_80GB"),
    ("gpu_count=8&", lambda o: o["gpuCount"] == 8),
    ("regions=canada&regions=eu_north&",
     lambda o: o.get("region") in ("canada", "eu_north")),
    ("gpu_type=A100_80GB&gpu_count=1&regions=united_states&",
     lambda o: o["gpuType"] == "A100_80GB" and o["gpuCount"] == 1 and o.get("region") == "united_states"),
    ("gpu_type=" + urllib.parse.quote("RTX 3090_24GB") + "&", lambda o: o["gpuType"] == "RTX 3090_24GB"),
])
def test_gpus_filters(srv, query, keep):
    everything, _, _ = all_pages(srv, "/availability/gpus")
    expected = [o for o in everything if keep(o)]
    got, total, _ = all_pages(srv, "/availability/gpus", query=query, page_size=50)
    assert got == expected and total == len(expected)
    assert total > 0


def test_multinode_filter(srv):
    d = srv.get("/availability/multi-node?gpu_type=A100_80GB&gpu_count=32")
    assert d["totalCount"] == len(d["items"]) >= 1
    assert all(o["gpuType"] == "A100_80GB" and o["gpuCount"] == 32 for o in d["items"])


def test_offers_shape_and_nasty_offers(srv):
    items, _, _ = all_pages(srv, "/availability/gpus")
    for o in items:
        assert OFFER_R_KEYS <= set(o), o
        assert "currency" in o["prices"]
        for s in ("disk", "vcpu", "memory"):
            assert "step" in o[s]
    legacy = [o for o in items if "region" not in o]
    assert len(legacy) == N_LEGACY
    generated = items[N_RECORDED + N_LEGACY:]
    assert {o["provider"] for o in generated} >= {"runpod", "hyperstack", "lambdalabs",
                                                  "massedcompute", "tensordock", "datacrunch"}
    assert {o["gpuCount"] for o in generated} >= {1, 2, 4, 8}
    community = [o for o in generated if o["security"] == "community_cloud"]
    assert community and all(o["prices"]["onDemand"] is None and o["prices"]["communityPrice"]
                             for o in community)
    assert any(o["isSpot"] is True for o in generated)
    assert any(o["images"] and len(o["images"]) == 1 for o in generated)
    # the nasty ones
    assert sum(o["provider"] == "evil/provider x" for o in items) == 1
    assert sum(o["dataCenter"] == ".." for o in items) == 1
    assert sum(o["gpuType"] == "RTX 3090_24GB" for o in items) == 1
    assert sum(o["prices"]["onDemand"] is None and o["prices"]["communityPrice"] is None
               for o in items) == 1
    canon = [json.dumps(o, sort_keys=True) for o in items]
    assert len(canon) - len(set(canon)) == 1          # exactly one true duplicate


def test_same_seed_same_offers(srv, fresh):
    other = fresh("--seed", "1")
    assert all_pages(other, "/availability/gpus")[0] == all_pages(srv, "/availability/gpus")[0]
    changed = fresh("--seed", "2")
    assert all_pages(changed, "/availability/gpus")[0] != all_pages(srv, "/availability/gpus")[0]


def test_gpu_summary(srv):
    d = srv.get("/availability/gpu-summary")
    recorded = load("availability_summary.json")
    for gpu_type, value in recorded.items():
        assert d[gpu_type] == value
    assert {"RTX4090_24GB", "L40S_48GB", "A6000_48GB", "RTX 3090_24GB"} <= set(d)
    assert set(d["L40S_48GB"]["1"]["cheapest"]) == {"onDemand", "communityPrice", "spotPrice"}


# --------------------------------------------------------------------------
# auth, transport

def test_auth(srv):
    for key in (None, "wrong", ""):
        status, _, data = srv.api("GET", "/pods/", key=key)
        assert status == 401 and isinstance(data["detail"], str), key
    status, _, _ = srv.api("GET", "/availability/gpus", key="test-key ")
    assert status == 401
    assert srv.api("GET", "/pods/")[0] == 200
    assert srv.api("GET", "/nope")[0] == 404
    assert srv.api("PUT", "/pods/", {})[0] == 405
    assert srv.api("GET", "/availability/clusters")[0] == 404         # documented, not implemented


def test_keep_alive_and_content_length(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    sock = None
    for path, key, code in [("/api/v1/pods/", KEY, 200), ("/api/v1/pods/nope", KEY, 404),
                            ("/api/v1/pods/", "bad", 401), ("/api/v1/availability/gpus", KEY, 200)]:
        conn.request("GET", path, headers={"Authorization": "Bearer " + key})
        r = conn.getresponse()
        body = r.read()
        assert r.status == code
        assert int(r.headers["Content-Length"]) == len(body)
        json.loads(body)
        assert sock is None or conn.sock is sock, "connection was not kept alive"
        sock = conn.sock
    conn.close()


def test_trailing_slash(srv):
    """As FastAPI does: the other form of a documented path is a 307 to it
    (query kept, nothing else done); the documented form is answered."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    for method, path, to in [("GET", "/api/v1/pods?offset=1", "/api/v1/pods/?offset=1"),
                             ("POST", "/api/v1/pods", "/api/v1/pods/"),
                             ("GET", "/api/v1/availability/gpus/?page=2",
                              "/api/v1/availability/gpus?page=2"),
                             ("GET", "/api/v1/pods/history/", "/api/v1/pods/history")]:
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers={"Authorization": "Bearer " + KEY})
        r = conn.getresponse()
        assert (r.status, r.headers["Location"], r.read()) == (307, to, b""), path
    conn.close()
    # a client that follows it gets the same answer
    assert srv.get("/availability/gpus/?page=2")["items"] == srv.get("/availability/gpus?page=2")["items"]
    assert srv.api("GET", "/pods/nope/")[0] == 404     # not a documented path either way


# --------------------------------------------------------------------------
# pods

def test_pods_envelope_and_quirks(srv):
    d = srv.get("/pods/")
    assert set(d) == {"total_count", "offset", "limit", "data"}
    assert (d["offset"], d["limit"]) == (0, 100)
    pods = d["data"]
    assert d["total_count"] == len(pods) == 3 + 1 + 11 + 5
    # the synthetic fixture's pods, brought to the description (fake_api.normalize_pod)
    fixture = load("synthetic/pods_list.json")["data"]
    assert pods[:3] == [fake_api.normalize_pod(p) for p in fixture]
    assert [p["userId"] for p in pods[:3]] == ["user-123"] * 3
    ids = [p["id"] for p in pods]
    assert ids.count("cm9zq1x2a0001l508abcdefgh") == 2          # the fixture's quirk
    names = [p["name"] for p in pods]
    assert names.count("dup") == 2
    for name in ("my pod", "a/b", "..", None, "demo"):
        assert name in names
    assert any(p["name"] in ids and p["name"] != p["id"] for p in pods)
    assert ["gen-%04d" % i for i in range(1, 6)] == [n for n in names if n and n.startswith("gen-")]
    demo = pods[names.index("demo")]
    assert (demo["status"], demo["installationStatus"], demo["sshConnection"], demo["ip"]) == \
        ("ACTIVE", "FINISHED", SSH_CONN, "127.0.0.1")
    stopped = [p for p in pods if p["status"] == "STOPPED"]
    assert any(p["sshConnection"] == [None] for p in stopped)
    installing = [p for p in pods if p["status"] == "ACTIVE" and p["installationStatus"] == "ACTIVE"]
    assert any(p["installationProgress"] == 40 for p in installing)
    assert {"PENDING", "ERROR", "ACTIVE", "STOPPED"} <= {p["status"] for p in pods}
    for p in pods:
        assert POD_R_KEYS <= set(p), p["id"]
        assert "gpuType" not in p and "priceHr" in p
        assert isinstance(p["id"], str) and p["createdAt"].endswith("Z")
        for m in p.get("primePortMapping") or []:
            assert isinstance(m["internal"], str) and isinstance(m["external"], str)
            assert "description" in m


def test_pods_paging(srv):
    everything = srv.get("/pods/")["data"]
    got, offset = [], 0
    while True:
        d = srv.get("/pods/?offset=%d&limit=3" % offset)
        assert d["total_count"] == len(everything) and d["limit"] == 3 and d["offset"] == offset
        got += d["data"]
        offset += 3
        if offset >= d["total_count"]:
            break
    assert got == everything
    assert srv.get("/pods/?limit=500")["limit"] == 100
    assert srv.get("/pods/?offset=999")["data"] == []
    assert srv.api("GET", "/pods/?offset=-1")[0] == 422


def test_pod_get_status_404(srv):
    p = srv.get("/pods/cm9zq1x2a0015l508abcdefgh")
    assert p["name"] == "demo"
    status, _, data = srv.api("GET", "/pods/cnotthere000000000000000")
    assert (status, data) == (404, {"detail": "Pod not found"})
    # the duplicated id: GET answers the first one
    assert srv.get("/pods/cm9zq1x2a0001l508abcdefgh")["status"] == "ACTIVE"
    d = srv.get("/pods/status?pod_ids=cm9zq1x2a0001l508abcdefgh&pod_ids=cm9zq1x2a0015l508abcdefgh"
                "&pod_ids=cnotthere000000000000000")
    assert [(s["podId"], s["status"]) for s in d["data"]] == [
        ("cm9zq1x2a0001l508abcdefgh", "ACTIVE"), ("cm9zq1x2a0001l508abcdefgh", "PENDING"),
        ("cm9zq1x2a0015l508abcdefgh", "ACTIVE")]
    assert d["data"][2]["sshConnection"] == SSH_CONN
    for s in d["data"]:
        assert STATUS_R_KEYS <= set(s)
    assert len(srv.get("/pods/status")["data"]) == srv.get("/pods/")["total_count"]


def test_history_and_wallet(srv):
    h = srv.get("/pods/history")
    fixture = load("synthetic/pods_history.json")["data"]
    for row in fixture:  # the fake gives the fixture's rows a ResourceType
        row["type"] = "Instance"
    assert h["total_count"] == len(fixture) + 4 and h["data"][:len(fixture)] == fixture
    assert {r["type"] for r in h["data"]} == {"Instance", "Cluster", "Disk", "Sandbox"}
    assert srv.get("/pods/history?offset=1&limit=1")["data"] == h["data"][1:2]
    w = srv.get("/billing/wallet")
    assert w["balance_usd"] == 100.0 and w["total_billings"] == 3 and len(w["recent_billings"]) == 3
    w = srv.get("/billing/wallet?limit=1&offset=1&teamId=cmf0ohr9s0026ilerf3w68s6n")
    assert [b["id"] for b in w["recent_billings"]] == ["bill_2"]
    assert w["team_id"] == "cmf0ohr9s0026ilerf3w68s6n" and w["total_billings"] == 3


def test_create_timeline(fresh):
    fake = fresh("--pending-secs", "0.5", "--install-secs", "1.5", "--ssh", SSH)
    multi = fake.get("/availability/multi-node?gpu_count=16")["items"][0]
    status, _, pod = fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))
    assert status == 200
    assert CUID.match(pod["id"]) and pod["name"] == "a100-1"
    assert (pod["status"], pod["sshConnection"]) == ("PENDING", None)
    assert pod["priceHr"] == load("availability_response.json")["items"][0]["prices"]["onDemand"]
    assert pod["environmentType"] == "ubuntu_22_cuda_12" and pod["gpuName"] == "A100_80GB"
    assert POD_R_KEYS <= set(pod) and pod["createdAt"].endswith("Z")
    body = {"pod": {"name": "cluster", "cloudId": multi["cloudId"], "gpuType": multi["gpuType"],
                    "socket": multi["socket"], "gpuCount": 16,
                    "dataCenterId": multi["dataCenter"]},
            "provider": {"type": multi["provider"]}, "disks": None,
            "team": {"teamId": "cmf0ohr9s0026ilerf3w68s6n"}}
    status, _, cluster = fake.api("POST", "/pods/", body)
    assert status == 200 and cluster["teamId"] == "cmf0ohr9s0026ilerf3w68s6n"

    # Watched until it is up: the phases come in order, never back.
    seen = []
    deadline = time.monotonic() + 30  # only against a hang
    while not seen or seen[-1]["installationStatus"] != "FINISHED":
        assert time.monotonic() < deadline, seen[-1:]
        seen.append(fake.get("/pods/" + pod["id"]))
        time.sleep(0.05)
    phases = [(p["status"], p["installationStatus"]) for p in seen]
    order = [("PENDING", "PENDING"), ("ACTIVE", "ACTIVE"), ("ACTIVE", "FINISHED")]
    assert all(ph in order for ph in phases), phases
    assert [order.index(ph) for ph in phases] == sorted(order.index(ph) for ph in phases)
    installing = [p for p in seen if p["installationStatus"] == "ACTIVE"]
    assert installing, phases
    for p in installing:
        assert p["sshConnection"] is None and 0 <= p["installationProgress"] <= 99
    progress = [p["installationProgress"] for p in installing]
    assert progress == sorted(progress)
    done = seen[-1]
    assert (done["status"], done["installationStatus"], done["installationProgress"]) == \
        ("ACTIVE", "FINISHED", 100)
    assert (done["sshConnection"], done["ip"]) == (SSH_CONN, "127.0.0.1")
    assert done["primePortMapping"][0]["external"] == "2222"
    # the list and the status endpoint agree
    listed = [p for p in fake.get("/pods/")["data"] if p["id"] == pod["id"]]
    assert listed == [done]
    st = fake.get("/pods/status?pod_ids=" + pod["id"])["data"]
    assert [(s["status"], s["sshConnection"], s["installationProgress"]) for s in st] == \
        [("ACTIVE", SSH_CONN, 100)]
    c = fake.get("/pods/" + cluster["id"])
    assert c["sshConnection"] == [SSH_CONN, SSH_CONN] and c["ip"] == ["127.0.0.1", "127.0.0.1"]


def test_delete_to_history(fresh):
    fake = fresh("--pending-secs", "0", "--install-secs", "0")
    status, _, pod = fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))
    assert status == 200
    before = fake.get("/pods/")["total_count"]
    status, _, data = fake.api("DELETE", "/pods/" + pod["id"])
    assert (status, data) == (200, {"status": "TERMINATED"})
    assert fake.api("GET", "/pods/" + pod["id"])[0] == 404
    assert fake.api("DELETE", "/pods/" + pod["id"])[:3:2] == (404, {"detail": "Pod not found"})
    assert fake.get("/pods/")["total_count"] == before - 1
    h = fake.get("/pods/history")
    assert h["total_count"] == 7
    entry = h["data"][0]
    assert entry["id"] == pod["id"] and entry["terminatedAt"].endswith("Z")
    assert entry["totalBilledPrice"] < 0.01
    # a fixture pod: the id listed twice disappears entirely, billed since createdAt
    before = time.time()
    status, _, _ = fake.api("DELETE", "/pods/cm9zq1x2a0001l508abcdefgh")
    after = time.time()
    assert status == 200
    assert "cm9zq1x2a0001l508abcdefgh" not in [p["id"] for p in fake.get("/pods/")["data"]]
    entry = fake.get("/pods/history")["data"][0]
    created = time.mktime(time.strptime("2026-05-01T12:00:00", "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert entry["id"] == "cm9zq1x2a0001l508abcdefgh"
    # billed up to the DELETE, which came between before and after
    assert 1.6568 * (before - created) / 3600 - 0.0001 <= entry["totalBilledPrice"] \
        <= 1.6568 * (after - created) / 3600 + 0.0001
    assert entry["totalBilledPrice"] == round(entry["totalBilledPrice"], 4)
    # the null-named pod still gets a string name in history
    assert fake.api("DELETE", "/pods/cm9zq1x2a0013l508abcdefgh")[0] == 200
    for e in fake.get("/pods/history")["data"]:
        for k in HISTORY_R_KEYS:
            assert e[k] is not None, (e["id"], k)


def test_delete_204(fresh):
    fake = fresh("--delete-204")
    status, headers, payload = fake.api("DELETE", "/pods/cm9zq1x2a0010l508abcdefgh", raw=True)
    assert (status, payload) == (204, b"")
    assert fake.api("GET", "/pods/cm9zq1x2a0010l508abcdefgh")[0] == 404


def errors_of(data):
    """{param: details} of a 422 in the description's ErrorResponse shape."""
    assert set(data) == {"errors"}
    assert all(set(e) == {"param", "details"} for e in data["errors"])
    return {e["param"]: e["details"] for e in data["errors"]}


def test_create_422_lists_every_problem(srv):
    status, _, data = srv.api("POST", "/pods/", {"pod": {"gpuCount": 0, "name": None}})
    assert status == 422
    # name is optional, but not null; the other three are required; and
    # provider is required too
    assert set(errors_of(data)) == {"pod.name", "pod.cloudId", "pod.gpuType", "pod.socket",
                                    "pod.gpuCount", "provider"}
    status, _, data = srv.api("POST", "/pods/", {"provider": {}})
    assert status == 422 and set(errors_of(data)) == {"pod", "provider.type"}
    status, _, data = srv.api("POST", "/pods/", b"{not json")
    assert status == 422 and set(errors_of(data)) == {"body"}
    # well-formed, but no such offer (wrong data center)
    body = load("synthetic/pod_create_request.json")
    body["pod"]["dataCenterId"] = "US-NOWHERE-1"
    status, _, data = srv.api("POST", "/pods/", body)
    assert status == 422 and "No available offer" in errors_of(data)["pod"]
    # wrong provider
    body = load("synthetic/pod_create_request.json")
    body["provider"] = {"type": "hyperstack"}
    assert srv.api("POST", "/pods/", body)[0] == 422
    # nothing was created
    assert srv.get("/pods/")["total_count"] == 20


@pytest.mark.parametrize("change, param", [
    (lambda b: b["pod"].update(gpuTyp="A100_80GB"), "pod.gpuTyp"),       # unknown key
    (lambda b: b["pod"].update(provider="runpod"), "pod.provider"),      # unknown key
    (lambda b: b["pod"].pop("socket"), "pod.socket"),                    # missing required
    (lambda b: b.pop("provider"), "provider"),                           # missing required
    (lambda b: b["pod"].update(image="ubuntu"), "pod.image"),            # bad enum
    (lambda b: b["pod"].update(image=None), "pod.image"),                # not nullable
    (lambda b: b["pod"].update(socket="SXM9"), "pod.socket"),            # bad enum
    (lambda b: b["pod"].update(security="cheap"), "pod.security"),       # bad enum
    (lambda b: b["provider"].update(type="aws"), "provider.type"),       # bad enum
    (lambda b: b["pod"].update(gpuCount="two"), "pod.gpuCount"),         # bad type
    (lambda b: b["pod"].update(diskSize=0), "pod.diskSize"),             # not > 0
    (lambda b: b["pod"].update(autoRestart="no"), "pod.autoRestart"),    # bad type
    (lambda b: b["pod"].update(envVars=[{"key": "A"}]), "pod.envVars"),  # item without value
    (lambda b: b.update(team={}), "team"),                               # teamId required
])
def test_create_body_checked_against_description(srv, change, param):
    body = load("synthetic/pod_create_request.json")
    change(body)
    status, _, data = srv.api("POST", "/pods/", body)
    assert status == 422, data
    assert list(errors_of(data)) == [param]


def test_create_body_lax_and_extra_top_level(fresh):
    """What the description (and pydantic) accept: a count given as a
    string, unknown keys beside pod (the body object does not forbid them),
    every optional key left out (image defaults to ubuntu_22_cuda_12)."""
    fake = fresh("--pending-secs", "0", "--install-secs", "0")
    body = load("synthetic/pod_create_request.json")
    body["pod"]["gpuCount"] = "1"
    body["extra"] = True
    status, _, pod = fake.api("POST", "/pods/", body)
    assert status == 200 and pod["gpuCount"] == 1
    small = {"pod": {k: body["pod"][k] for k in ("cloudId", "gpuType", "socket", "gpuCount",
                                                  "dataCenterId")},
             "provider": body["provider"]}
    status, _, pod = fake.api("POST", "/pods/", small)
    assert status == 200 and pod["environmentType"] == "ubuntu_22_cuda_12" and pod["name"]


def test_create_max_price(fresh):
    """maxPrice is honoured: an offer above it is refused with a 422 naming
    pod.maxPrice, and nothing is created; at or above the price it is ordered."""
    fake = fresh()
    price = load("availability_response.json")["items"][0]["prices"]["onDemand"]
    before = fake.get("/pods/")["total_count"]
    body = load("synthetic/pod_create_request.json")
    body["pod"]["maxPrice"] = price - 0.01
    status, _, data = fake.api("POST", "/pods/", body)
    assert status == 422 and list(errors_of(data)) == ["pod.maxPrice"]
    assert fake.get("/pods/")["total_count"] == before
    body["pod"]["maxPrice"] = price
    assert fake.api("POST", "/pods/", body)[0] == 200


def test_create_402(fresh):
    fake = fresh()
    fake.admin("balance", {"balance": 0})
    assert fake.get("/billing/wallet")["balance_usd"] == 0
    status, _, data = fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))
    assert (status, data) == (402, {"detail": "Payment required"})
    # validation comes first
    assert fake.api("POST", "/pods/", {"pod": {}})[0] == 422
    fake.admin("balance", {"balance": 1.5})
    assert fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))[0] == 200


def test_create_nasty_offer(fresh):
    """The offer whose provider has a space and a slash can be ordered."""
    fake = fresh("--pending-secs", "0", "--install-secs", "0")
    evil = [o for o in all_pages(fake, "/availability/gpus")[0] if o["provider"] == "evil/provider x"][0]
    body = {"pod": {"name": "evil", "cloudId": evil["cloudId"], "gpuType": evil["gpuType"],
                    "socket": evil["socket"], "gpuCount": evil["gpuCount"],
                    "dataCenterId": evil["dataCenter"], "image": "axolotl"},
            "provider": {"type": evil["provider"]}}
    status, _, pod = fake.api("POST", "/pods/", body)
    assert status == 200 and pod["providerType"] == "evil/provider x"
    # no --ssh: the finished pod has no ssh connection
    p = fake.get("/pods/" + pod["id"])
    assert (p["installationStatus"], p["sshConnection"]) == ("FINISHED", None)


# --------------------------------------------------------------------------
# admin

def test_admin_stats(fresh):
    fake = fresh()
    fake.admin("reset", {})
    fake.get("/pods/")
    fake.get("/pods/")
    fake.get("/pods/cm9zq1x2a0015l508abcdefgh")
    fake.get("/availability/gpus?page=2&page_size=10&regions=canada&regions=eu_north")
    fake.api("POST", "/pods/", {"pod": {"name": "x"}})
    fake.api("DELETE", "/pods/cnope")
    fake.api("GET", "/pods/", key="bad")
    stats = fake.admin("stats")
    counts = stats["counts"]
    assert counts["GET /pods"] == 3 and counts["GET /pods/{id}"] == 1
    assert counts["GET /availability/gpus"] == 1 and counts["POST /pods"] == 1
    assert counts["DELETE /pods/{id}"] == 1
    assert counts["GET /availability/multi-node"] == counts["GET /billing/wallet"] == 0
    reqs = stats["requests"]
    assert [(r["method"], r["status"]) for r in reqs] == [
        ("GET", 200), ("GET", 200), ("GET", 200), ("GET", 200), ("POST", 422), ("DELETE", 404),
        ("GET", 401)]
    assert reqs[3]["path"] == "/api/v1/availability/gpus"
    assert reqs[3]["query"] == {"page": ["2"], "page_size": ["10"], "regions": ["canada", "eu_north"]}
    assert reqs[4]["body"] == {"pod": {"name": "x"}}
    assert reqs[0]["headers"] == {"authorization": "Bearer test-key",
                                  "user-agent": "prime-cli/0.6.26 python/3.11.2",
                                  "content-type": "application/json"}
    assert reqs[0]["body"] is None
    fake.admin("reset", {})
    stats = fake.admin("stats")
    assert stats["requests"] == [] and set(stats["counts"].values()) == {0}


def test_admin_pods(fresh):
    fake = fresh()
    res = fake.admin("pods", {"add": [{"name": "from-web", "status": "PENDING"}],
                              "delete": ["cm9zq1x2a0008l508abcdefgh"],
                              "set": {"id": "cm9zq1x2a0015l508abcdefgh", "status": "ERROR",
                                      "sshConnection": None}})
    assert res["deleted"] == ["cm9zq1x2a0008l508abcdefgh"] and res["set"] == 1
    added = fake.get("/pods/" + res["added"][0])
    assert added["name"] == "from-web" and POD_R_KEYS <= set(added)
    assert fake.api("GET", "/pods/cm9zq1x2a0008l508abcdefgh")[0] == 404
    assert fake.get("/pods/history")["data"][0]["id"] == "cm9zq1x2a0008l508abcdefgh"
    demo = fake.get("/pods/cm9zq1x2a0015l508abcdefgh")
    assert (demo["status"], demo["sshConnection"]) == ("ERROR", None)
    # removing an offer makes creating from it a 422
    res = fake.admin("offers", {"remove": {"cloudId": "NVIDIA A100 80GB PCIe", "dataCenter": "US-KS-2",
                                           "provider": "runpod"}})
    assert res["removed"] >= 1
    assert fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))[0] == 422


# --------------------------------------------------------------------------
# faults

def fault(fake, **rule):
    fake.admin("fault", rule)


def test_fault_status_codes(fresh):
    fake = fresh("--offers", "20")
    fault(fake, kind="500", count=1)
    status, _, data = fake.api("GET", "/pods/")
    assert status == 500 and isinstance(data["detail"], str)
    assert fake.api("GET", "/pods/")[0] == 200                   # count exhausted

    fault(fake, kind="503", count=1, retry_after=7)
    status, headers, _ = fake.api("GET", "/billing/wallet")
    assert status == 503 and headers["Retry-After"] == "7"

    fault(fake, kind="429", count=2, retry_after=3)
    for _ in range(2):
        status, headers, data = fake.api("GET", "/availability/gpus")
        assert status == 429 and headers["Retry-After"] == "3" and "detail" in data
    assert fake.api("GET", "/availability/gpus")[0] == 200

    fault(fake, kind="500", match="GET /pods/history")
    assert fake.api("GET", "/pods/")[0] == 200
    assert fake.api("GET", "/pods/history")[0] == 500
    assert fake.api("GET", "/pods/history/")[0] == 500
    fake.admin("clear_faults", {})
    assert fake.api("GET", "/pods/history")[0] == 200

    fault(fake, kind="500", rate=0)
    assert all(fake.api("GET", "/pods/")[0] == 200 for _ in range(5))
    fake.admin("clear_faults", {})
    fault(fake, kind="503", rate=0.5)
    codes = [fake.api("GET", "/pods/status")[0] for _ in range(40)]
    assert 5 < codes.count(503) < 35 and codes.count(200) == 40 - codes.count(503)
    fake.admin("clear_faults", {})
    # faulted requests are counted, the admin API is not faulted
    assert fake.admin("stats")["counts"]["GET /pods/status"] == 40


def test_fault_reset(fresh):
    fake = fresh()
    fault(fake, kind="reset", count=1)
    s = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    s.sendall(b"GET /api/v1/pods/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\n\r\n")
    try:
        got = s.recv(65536)
    except ConnectionResetError:
        got = b""
    s.close()
    assert got == b"", "a reset must not send any answer"
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        fault(fake, kind="reset", count=1)
        fake.api("GET", "/pods/")
    assert fake.api("GET", "/pods/")[0] == 200                   # still serving
    stats = fake.admin("stats")
    assert stats["counts"]["GET /pods"] == 3
    assert [r.get("fault") for r in stats["requests"]] == ["reset", "reset", None]
    assert stats["requests"][0]["status"] is None


def test_fault_slow_and_badjson(fresh):
    fake = fresh()
    fault(fake, kind="slow", delay=0.4, count=1)
    assert fake.api("GET", "/pods/")[0] == 200
    assert fake.api("GET", "/pods/")[0] == 200
    assert [r.get("fault") for r in fake.admin("stats")["requests"]] == ["slow", None]

    fault(fake, kind="badjson", count=1, match="GET /pods/{id}")
    status, headers, payload = fake.api("GET", "/pods/cm9zq1x2a0015l508abcdefgh", raw=True)
    assert status == 200 and int(headers["Content-Length"]) == len(payload) > 0
    with pytest.raises(ValueError):
        json.loads(payload)
    assert fake.get("/pods/cm9zq1x2a0015l508abcdefgh")["name"] == "demo"


def test_fault_drop_post(fresh):
    fake = fresh()
    fault(fake, kind="drop_post", count=1)
    assert fake.api("GET", "/pods/")[0] == 200                   # only POST /pods is affected
    body = load("synthetic/pod_create_request.json")
    body["pod"]["name"] = "lost-answer"
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        fake.api("POST", "/pods/", body)
    names = [p["name"] for p in fake.get("/pods/")["data"]]
    assert names.count("lost-answer") == 1                     # created all the same
    body["pod"]["name"] = "second"
    assert fake.api("POST", "/pods/", body)[0] == 200            # count exhausted
    stats = fake.admin("stats")
    assert stats["counts"]["POST /pods"] == 2
    assert [r.get("fault") for r in stats["requests"] if r["method"] == "POST"] == ["drop_post", None]


def test_fault_bad_kind(fresh):
    fake = fresh()
    status, _, _ = fake.request("POST", "/_admin/fault", {"kind": "meteor"}, key=None)
    assert status == 400


# --------------------------------------------------------------------------
# HTTPS

def test_make_certs_idempotent(certs):
    before = {k: Path(v).stat().st_mtime_ns for k, v in certs.items()}
    again = make_certs.make_certs(Path(certs["ca_pem"]).parent)
    assert again == certs
    assert {k: Path(v).stat().st_mtime_ns for k, v in again.items()} == before
    assert Path(certs["server_key"]).stat().st_mode & 0o077 == 0


def test_https(fresh, certs, srv):
    fake = fresh("--pods", "5", tls=certs)
    assert fake.base.startswith("https://")
    # an idle TCP client that never starts the handshake must not block others
    idle = socket.create_connection(("127.0.0.1", fake.port))
    try:
        t = time.monotonic()
        items, total, _ = all_pages(fake, "/availability/gpus")
        assert time.monotonic() - t < 30  # not blocked behind the idle client
        assert total == N_RECORDED + N_LEGACY + N_GENERATED
        assert items == all_pages(srv, "/availability/gpus")[0]      # same seed, same data
        assert fake.api("GET", "/pods/", key="bad")[0] == 401
        status, _, pod = fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))
        assert status == 200 and CUID.match(pod["id"])
    finally:
        idle.close()
    # without the test CA the certificate is refused
    plain = urllib.request.Request(fake.base + "/api/v1/pods/", headers={"Authorization": "Bearer " + KEY})
    with pytest.raises(urllib.error.URLError) as exc:
        urllib.request.urlopen(plain, timeout=5, context=ssl.create_default_context())
    assert isinstance(exc.value.reason, ssl.SSLCertVerificationError)
    # a reset over TLS
    fault(fake, kind="reset", count=1)
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError, ssl.SSLError)):
        fake.api("GET", "/pods/")
    assert fake.api("GET", "/pods/")[0] == 200


# --------------------------------------------------------------------------
# fidelity: datasets, the self-check, knobs

SPEC = openapi_check.load()


def every_answer(fake):
    """(template, status, body) of one call of each implemented endpoint,
    every page of the lists."""
    out = []
    for ep in ("/availability/gpus", "/availability/multi-node"):
        items, _, pages = all_pages(fake, ep)
        for page in range(1, pages + 1):
            out.append(("/api/v1" + ep, 200, fake.get("%s?page=%d" % (ep, page))))
    pods = fake.get("/pods/?limit=100")
    out.append(("/api/v1/pods/", 200, pods))
    for ep in ("/availability/gpu-summary", "/pods/status", "/pods/history",
               "/billing/wallet?limit=100"):
        out.append(("/api/v1" + ep.split("?")[0], 200, fake.get(ep)))
    for p in pods["data"]:
        out.append(("/api/v1/pods/{pod_id}", 200, fake.get("/pods/" + p["id"])))
        out.append(("/api/v1/pods/{pod_id}/log", 200, fake.get("/pods/%s/log?tail=2" % p["id"])))
    return out


@pytest.mark.parametrize("dataset", ["classic", "full"])
def test_self_check_passes_on_every_answer(fresh, dataset):
    """With the self-check on (the default) every endpoint answers 200 for
    each dataset, and the answers fit the description but for the classic
    data's deliberate deviations (fake_api.OFF_SCHEMA_CLASSIC)."""
    fake = fresh("--dataset", dataset, "--pods", "6", "--ssh", SSH)
    deviations = set()
    for template, status, body in every_answer(fake):
        problems = SPEC.operation("GET", template).check_response(status, body)
        waived = [p for p in problems if any(r.search(p) for r in fake_api.OFF_SCHEMA_CLASSIC)]
        assert problems == waived, (template, problems)
        deviations |= {re.sub(r"\.\d+\.", ".N.", p) for p in waived}
    # the waivers are only what they claim to be
    assert all("evil" in d or "RTX 3090" in d or "null" in d or "None" in d for d in deviations)


def test_self_check_fails_loudly(fresh):
    """An answer off the description is a 500 with a stderr line; so is a
    query parameter the operation does not document."""
    fake = fresh()
    fake.admin("pods", {"set": {"id": "cm9zq1x2a0015l508abcdefgh", "status": "SLEEPING"}})
    status, _, data = fake.api("GET", "/pods/cm9zq1x2a0015l508abcdefgh")
    assert status == 500 and "status" in data["detail"]
    status, _, data = fake.api("GET", "/pods/?offset=0&limt=100")
    assert status == 500 and "limt" in data["detail"]
    fake.log.seek(0)
    log = fake.log.read().decode()
    assert "fake API check: GET /api/v1/pods/cm9zq1x2a0015l508abcdefgh: response.status:" in log
    assert "fake API check: GET /api/v1/pods/: query parameter 'limt'" in log
    # off: the same answer goes out as it is
    off = fresh("--no-check-responses")
    off.admin("pods", {"set": {"id": "cm9zq1x2a0015l508abcdefgh", "status": "SLEEPING"}})
    assert off.get("/pods/cm9zq1x2a0015l508abcdefgh")["status"] == "SLEEPING"


def test_full_dataset(fresh):
    fake = fresh("--dataset", "full")
    pods = fake.get("/pods/")["data"]
    assert {p["status"] for p in pods} == set(SPEC.schema("PodStatusEnum")["enum"])
    assert any(p["status"] == "ACTIVE" and p["installationStatus"] == "ERROR"
               and p["installationFailure"] for p in pods)
    for key in ("stoppedPriceHr", "provisioningPriceHr"):
        values = [p.get(key) for p in pods]
        assert None in values and any(isinstance(v, float) for v in values)
    offers, _, _ = all_pages(fake, "/availability/gpus")
    assert any(o["stockStatus"] == "Unavailable" for o in offers)
    assert any(o.get("prepaidTime") for o in offers)
    types = {h["type"] for h in fake.get("/pods/history")["data"]}
    assert types == set(SPEC.schema("ResourceType")["enum"])
    w = fake.get("/billing/wallet?limit=100")
    rows = w["recent_billings"]
    assert w["total_billings"] == len(rows) > 3
    assert {r["resource_type"] for r in rows} >= {"compute", "disks", "sandboxes", "training"}
    compute = {r["resource_id"] for r in rows if r["resource_type"] == "compute"}
    assert compute & {p["id"] for p in pods}
    assert any(r["last_billed_at"] is None for r in rows)
    # the classic dataset has none of these
    classic = fresh()
    assert "DELETING" not in {p["status"] for p in classic.get("/pods/")["data"]}


def test_pod_log(srv):
    d = srv.get("/pods/cm9zq1x2a0007l508abcdefgh/log?tail=1")
    assert d == {"logs": ["installation failed: Failed to pull image: manifest unknown"]}
    assert len(srv.get("/pods/cm9zq1x2a0007l508abcdefgh/log")["logs"]) == 3
    assert srv.api("GET", "/pods/cnope/log")[0] == 404
    assert srv.api("GET", "/pods/cm9zq1x2a0007l508abcdefgh/log?tail=x")[0] == 422


def test_create_provisioning_phase(fresh):
    fake = fresh("--provisioning-secs", "30", "--pending-secs", "0")
    status, _, pod = fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))
    assert status == 200 and (pod["status"], pod["installationStatus"]) == ("PROVISIONING", "PENDING")


def test_listing_lag(fresh):
    """/_admin/lag: a new pod is in GET /pods/ only after the lag (GET by id
    finds it at once); a deleted one stays, DELETING, for the lag, then is
    gone and in the history as TERMINATED/Instance."""
    fake = fresh("--pending-secs", "0", "--install-secs", "0")
    assert fake.admin("lag", {"secs": 1.0}) == {"list_secs": 1.0, "delete_secs": 1.0}
    status, _, pod = fake.api("POST", "/pods/", load("synthetic/pod_create_request.json"))
    assert status == 200
    assert pod["id"] not in [p["id"] for p in fake.get("/pods/")["data"]]
    assert fake.get("/pods/" + pod["id"])["id"] == pod["id"]
    deadline = time.monotonic() + 10
    while pod["id"] not in [p["id"] for p in fake.get("/pods/")["data"]]:
        assert time.monotonic() < deadline, "the new pod was never listed"
        time.sleep(0.1)
    status, _, data = fake.api("DELETE", "/pods/" + pod["id"])
    assert (status, data) == (200, {"status": "DELETING"})
    listed = [p for p in fake.get("/pods/")["data"] if p["id"] == pod["id"]]
    assert [p["status"] for p in listed] == ["DELETING"]
    assert fake.get("/pods/" + pod["id"])["status"] == "DELETING"
    assert pod["id"] not in [h["id"] for h in fake.get("/pods/history")["data"]]
    while fake.api("GET", "/pods/" + pod["id"])[0] != 404:
        assert time.monotonic() < deadline + 10, "the deleted pod never went"
        time.sleep(0.1)
    h = [h for h in fake.get("/pods/history")["data"] if h["id"] == pod["id"]]
    assert [x["type"] for x in h] == ["Instance"] and h[0]["terminatedAt"]
    fake.admin("lag", {"secs": 0})
    assert fake.api("DELETE", "/pods/cm9zq1x2a0010l508abcdefgh")[2] == {"status": "TERMINATED"}


def test_slow_create(fresh):
    """/_admin/slow_create: the pod exists before the answer comes; with
    lose, the answer never comes (the connection is reset)."""
    fake = fresh()
    fake.admin("slow_create", {"secs": 3.0})
    body = load("synthetic/pod_create_request.json")
    result = {}

    def post():
        result["answer"] = fake.api("POST", "/pods/", body)
    t = threading.Thread(target=post)
    t.start()
    deadline = time.monotonic() + 10
    while "a100-1" not in [p["name"] for p in fake.get("/pods/")["data"]]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "answer" not in result            # listed while the POST still waits
    t.join(10)
    assert result["answer"][0] == 200
    fake.admin("slow_create", {"secs": 0.2, "lose": True})
    body["pod"]["name"] = "lost"
    with pytest.raises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
        fake.api("POST", "/pods/", body)
    assert [p["name"] for p in fake.get("/pods/")["data"]].count("lost") == 1

def test_release_answers_held_requests(fresh):
    """A slow fault holds its requests (stats' "held") until its delay
    ends or /_admin/release answers them."""
    fake = fresh()
    fake.admin("fault", {"kind": "slow", "delay": 60, "match": "GET /pods"})
    result = {}

    def get():
        result["answer"] = fake.get("/pods/", timeout=30)
    t = threading.Thread(target=get)
    t.start()
    deadline = time.monotonic() + 10
    while fake.admin("stats")["held"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "answer" not in result
    fake.admin("release", {})
    t.join(10)
    assert "demo" in [p["name"] for p in result["answer"]["data"]]
    assert fake.admin("stats")["held"] == 0

# --------------------------------------------------------------------------
# primefs against the description (a real mount; conftest's fixtures)

def test_primefs_requests_follow_the_description(make_api, make_mount):
    """Every request primefs makes, for every tree and for mkdir/rmdir, uses
    the documented path (no 307), documented query parameters and a create
    body the description accepts; and every answer it got passed the
    fake's self-check (no 5xx)."""
    api = make_api("--pending-secs", "0", "--install-secs", "0")
    m = make_mount(api)
    os.listdir(m.p("pods"))
    os.listdir(m.p("history"))
    os.listdir(m.p("availability"))
    m.read("balance")
    m.write("config", "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n")
    os.mkdir(m.p("pods", "fidelity"))
    os.rmdir(m.p("pods", "fidelity"))
    reqs = api.requests()
    assert {r["method"] for r in reqs} >= {"GET", "POST", "DELETE"}
    bad = [(r["method"], r["path"], r["status"], r.get("check") or r.get("body"))
           for r in reqs if r["status"] is None or r["status"] >= 300]
    assert bad == []
