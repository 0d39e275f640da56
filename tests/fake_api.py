#!/usr/bin/python3
"""Fake Prime Intellect API server for the primefs tests.

Follows the contract in PRIME_API.md (sections 1, 3, 4.1, 4.4, 5.x, 7.1, 8)
and the API's own OpenAPI description (tests/openapi/*.yml), which decides
paths, bodies and answers:

  GET    /api/v1/availability/gpus          paged {items, totalCount}
  GET    /api/v1/availability/multi-node    paged {items, totalCount}
  GET    /api/v1/availability/gpu-summary
  GET    /api/v1/pods/                      {total_count, offset, limit, data}
  GET    /api/v1/pods/status?pod_ids=..     {data: [PodStatus]}
  GET    /api/v1/pods/history               {total_count, offset, limit, data}
  GET    /api/v1/pods/{id}
  GET    /api/v1/pods/{id}/log?tail=N       a string, a list or {"logs": [...]}
  POST   /api/v1/pods/
  DELETE /api/v1/pods/{id}
  GET    /api/v1/billing/wallet

As the real server does, a path that differs from a documented one only by
its trailing slash ('/api/v1/pods') gets a 307 to the documented form;
query parameters and the create body are checked against the description
(422 {"errors": [{"param", "details"}]} as it documents).  With
--check-responses (the default; FAKE_API_CHECK=0 or --no-check-responses
turns it off) every answer is checked against the operation's response
schema, and one that does not fit becomes a 500 with a "fake API check:"
line on stderr; so does a request with a query parameter the operation
does not document (the real server would silently ignore it).

--dataset classic (default) is the data the tests were written against;
--dataset full adds pods in every status, price variants, unavailable and
prepaid offers, billing rows and history rows of every resource type.

Plus unauthenticated test-control endpoints under /_admin (stats, reset,
fault injection, balance, pods, offers, lag, slow_create, release).  Standard
library plus python3-yaml (for the description).

The first line on stdout is the bound port; one log line per request goes
to stderr ("METHOD path status").  Run with --help for the options.
"""

import argparse
import base64
import binascii
import collections
import copy
import datetime
import json
import os
import random
import re
import signal
import socket
import ssl
import string
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openapi_check  # noqa: E402

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_admin"
REQUEST_LOG_SIZE = 500

# Counter keys that always appear in /_admin/stats (zero when unused).
KNOWN_ENDPOINTS = [
    "GET /availability/gpus",
    "GET /availability/multi-node",
    "GET /availability/gpu-summary",
    "GET /pods",
    "GET /pods/{id}",
    "GET /pods/{id}/log",
    "GET /pods/status",
    "GET /pods/history",
    "GET /billing/wallet",
    "GET /pods/{id}/log",
    "POST /pods",
    "DELETE /pods/{id}",
]

FAULT_KINDS = ("500", "503", "429", "reset", "slow", "badjson", "drop_post")

# Every key of the Pod model (5.1), in the order the fixtures use.
POD_KEYS = [
    "id", "name", "gpuName", "gpuCount", "socket", "status",
    "installationStatus", "installationProgress", "installationFailure",
    "createdAt", "updatedAt", "providerType", "type", "teamId", "userId",
    "walletId", "resources", "attachedResources", "primePortMapping",
    "sshConnection", "ip", "priceHr", "stoppedPriceHr", "provisioningPriceHr",
    "basePriceHr", "baseCurrency", "environmentType", "jupyterPassword",
    "customTemplateId", "isSpot", "autoRestart",
]

# Values that are NOT what the API's description allows, kept on purpose in
# the classic data to test primefs's robustness (its parsers must not trust
# the enums) or because a recorded answer shows them (recorded data win
# over the description).  The response check and the create body check
# accept exactly these; anything else off the description is an error.
OFF_SCHEMA_CLASSIC = [
    # the nasty offers and pods (made up, deliberately off the description):
    # generated offers without images (3 %), a provider and a gpuType that
    # are no enum value, a currency null, a pod without a name
    re.compile(r"\.images: array expected, got null$"),
    re.compile(r"\.(provider|providerType|type): 'evil/provider x' is not one of"),
    re.compile(r"\.(gpuType|gpuName|gpu_type): 'RTX 3090_24GB' is not one of"),
    re.compile(r"\.prices\.currency: None is not one of"),
    re.compile(r"^response\.data\.\d+\.name: string expected, got null$"),
    re.compile(r"^response\.name: string expected, got null$"),
]

RESOURCE_TYPES = ("Instance", "Cluster", "Disk", "Sandbox", "Inference", "Image", "Training")

USER_ID = "user-123"

# History rows next to the fixture's: a cluster, resources that are not
# pods (primefs must leave them out), and a second pod named like one there.
HISTORY_EXTRA = [
    {"id": "cm9yy0000003l508abcdefgh", "name": "cluster-16", "providerType": "hyperstack",
     "provisionedBy": None, "type": "Cluster", "createdAt": "2026-04-27T10:00:00.000Z",
     "terminatedAt": "2026-04-27T12:00:00.000Z", "gpuName": "H100_80GB", "gpuCount": 16,
     "socket": "SXM5", "priceHr": 40.0, "userId": "user-123", "teamId": None,
     "totalBilledPrice": 80.125},
    {"id": "cm9yy0000004l508abcdefgh", "name": "h100-8", "providerType": "runpod",
     "provisionedBy": None, "type": "Instance", "createdAt": "2026-04-26T10:00:00.000Z",
     "terminatedAt": "2026-04-26T11:00:00.000Z", "gpuName": "H100_80GB", "gpuCount": 8,
     "socket": "SXM5", "priceHr": 21.6544, "userId": "user-123", "teamId": None,
     "totalBilledPrice": 21.6544},
    {"id": "cm9yy0000005l508abcdefgh", "name": "disk-1", "providerType": "runpod",
     "provisionedBy": None, "type": "Disk", "createdAt": "2026-04-25T10:00:00.000Z",
     "terminatedAt": "2026-04-25T11:00:00.000Z", "gpuName": "", "gpuCount": 0,
     "socket": None, "priceHr": 0.01, "userId": "user-123", "teamId": None,
     "totalBilledPrice": 0.01},
    {"id": "cm9yy0000006l508abcdefgh", "name": "sandbox-1", "providerType": "runpod",
     "provisionedBy": None, "type": "Sandbox", "createdAt": "2026-04-25T12:00:00.000Z",
     "terminatedAt": "2026-04-25T13:00:00.000Z", "gpuName": "", "gpuCount": 0,
     "socket": None, "priceHr": 0.05, "userId": "user-123", "teamId": None,
     "totalBilledPrice": 0.05},
]

# GET /pods/{id}/log answers in each shape primefs must read.
LOG_SHAPES = {
    "cm9zq1x2a0001l508abcdefgh": "string",   # a100-1
    "cm9zq1x2a0003l508abcdefgh": "list",     # h100-16
    "cm9zq1x2a0015l508abcdefgh": "object",   # demo
}
WALLET_ID = "wal_abc"

# Ids of the hand-made pods added next to the fixture pods (CUID-shaped).
ID_INSTALLING = "cm9zq1x2a0005l508abcdefgh"
ID_PENDING = "cm9zq1x2a0006l508abcdefgh"
ID_ERROR = "cm9zq1x2a0007l508abcdefgh"
ID_DUP_1 = "cm9zq1x2a0008l508abcdefgh"
ID_DUP_2 = "cm9zq1x2a0009l508abcdefgh"
ID_SPACE = "cm9zq1x2a0010l508abcdefgh"
ID_SLASH = "cm9zq1x2a0011l508abcdefgh"
ID_DOTDOT = "cm9zq1x2a0012l508abcdefgh"
ID_NULLNAME = "cm9zq1x2a0013l508abcdefgh"
ID_NAME_IS_ID = "cm9zq1x2a0014l508abcdefgh"
ID_DEMO = "cm9zq1x2a0015l508abcdefgh"
# The pod whose *id* the pod ID_NAME_IS_ID uses as its *name* (the stopped one).
ID_STOPPED = "cm9zq1x2a0004l508abcdefgh"


# --------------------------------------------------------------------------
# small helpers

def iso(ts):
    """Epoch seconds -> '2026-05-01T12:00:00.000Z' (the fixtures' format)."""
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_iso(text):
    """ISO-8601 with 'Z' -> epoch seconds, or None when unparsable."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def cuid(rng):
    """A CUID-v1-looking id: 'c' + 24 of [a-z0-9]."""
    return "c" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(24))


def offer_price(offer):
    """The CLI's effective price: communityPrice, else onDemand, else None."""
    prices = offer.get("prices") or {}
    if prices.get("communityPrice") is not None:
        return prices["communityPrice"]
    return prices.get("onDemand")


def spec(min_count=None, default=None, max_count=None, price=None, step=None,
         included=None, info=None):
    """A ResourceSpec with every key present."""
    return {"minCount": min_count, "defaultCount": default, "maxCount": max_count,
            "pricePerUnit": price, "step": step, "defaultIncludedInPrice": included,
            "additionalInfo": info}


def make_pod(**fields):
    """A Pod with every 5.1 key present (null unless given, but for the
    keys the description makes non-null)."""
    pod = {k: None for k in POD_KEYS}
    pod.update(type="HOSTED", userId=USER_ID)
    pod.update(fields)
    return normalize_pod(pod)


# installationStatus as the description has it (InstallationStatusEnum:
# PENDING, ACTIVE, FINISHED, ERROR, TERMINATED; not nullable in a Pod).
INSTALL_FOR_STATUS = {"PROVISIONING": "PENDING", "PENDING": "PENDING", "ACTIVE": "FINISHED",
                      "STOPPED": "FINISHED", "ERROR": "ERROR", "DELETING": "FINISHED",
                      "TERMINATED": "TERMINATED", "UNKNOWN": "PENDING"}


def normalize_pod(pod):
    """Brings a pod (the synthetic fixtures' included, which were written
    from the CLI's laxer models) to what the description allows: userId
    and type present, installationStatus in its enum, attached resources'
    status in theirs.  Returns the pod."""
    if pod.get("userId") is None:
        pod["userId"] = USER_ID
    if pod.get("type") is None:
        pod["type"] = "HOSTED"
    inst = pod.get("installationStatus")
    inst = {"INSTALLING": "ACTIVE", "FAILED": "ERROR"}.get(inst, inst)
    if inst is None:
        inst = INSTALL_FOR_STATUS.get(pod.get("status"), "PENDING")
    pod["installationStatus"] = inst
    for r in pod.get("attachedResources") or []:
        if r.get("status") not in ("UNATTACHED", "ATTACHED", "MOUNTED"):
            r["status"] = "ATTACHED"
    return pod


def parse_ssh_endpoint(text):
    """USER@HOST:PORT -> ("USER@HOST -p PORT", HOST), as the API writes them."""
    user, _, hostport = text.rpartition("@")
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "22")
    return "%s@%s -p %d" % (user or "root", host, int(port)), host


def ssh_port_mapping(port):
    # Ports are strings in the API (the CLI model rejects ints).
    return [{"internal": "22", "external": str(port), "protocol": "TCP",
             "usedBy": "SSH", "description": None}]


def verr(loc, msg, typ):
    return {"loc": list(loc), "msg": msg, "type": typ}


def verr_response(errors):
    """A list of verr() as the description's 422 body (ErrorResponse)."""
    return {"errors": [{"param": ".".join(str(x) for x in e["loc"][1:]) or e["loc"][0],
                        "details": e["msg"]} for e in errors]}


def q_int(query, name, default, errors, minimum=None, maximum=None):
    """Read an int query parameter (last value wins, like FastAPI).

    Values below `minimum` are a 422; values above `maximum` are clamped
    (the brief asks for clamping page_size/limit rather than refusing)."""
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        errors.append(verr(["query", name], "value is not a valid integer", "type_error.integer"))
        return default
    if minimum is not None and value < minimum:
        errors.append(verr(["query", name], "ensure this value is greater than or equal to %d" % minimum,
                           "value_error.number.not_ge"))
        return default
    if maximum is not None and value > maximum:
        value = maximum
    return value


# --------------------------------------------------------------------------
# generated data (deterministic from --seed)

# gpuType, GB per GPU, [(cloudId, socket)], base USD per GPU-hour
GPU_MODELS = [
    ("H100_80GB", 80, [("NVIDIA H100 80GB HBM3", "SXM5"), ("NVIDIA H100 PCIe", "PCIe"),
                       ("NVIDIA H100 NVL", "PCIe")], 2.49),
    ("A100_80GB", 80, [("NVIDIA A100-SXM4-80GB", "SXM4"), ("NVIDIA A100 80GB PCIe", "PCIe")], 1.59),
    ("RTX4090_24GB", 24, [("NVIDIA GeForce RTX 4090", "PCIe")], 0.44),
    ("L40S_48GB", 48, [("NVIDIA L40S", "PCIe")], 0.86),
    ("A6000_48GB", 48, [("NVIDIA RTX A6000", "PCIe")], 0.49),
]

# provider -> [(dataCenter, country, region)]
LOCATIONS = {
    "runpod": [("US-KS-2", "US", "united_states"), ("CA-MTL-1", "CA", "canada"),
               ("EU-RO-1", "RO", "eu_east"), ("EU-SE-1", "SE", "eu_north")],
    "hyperstack": [("CANADA-1", "CA", "canada"), ("NORWAY-1", "NO", "eu_north"),
                   ("US-1", "US", "united_states")],
    "lambdalabs": [("us-east-1", "US", "united_states"), ("us-west-2", "US", "united_states"),
                   ("asia-northeast-1", "JP", "asia_northeast")],
    "massedcompute": [("US-CENTRAL-1", "US", "united_states"), ("US-EAST-2", "US", "united_states")],
    # tensordock: like the legacy data, some offers have no data center/country.
    "tensordock": [(None, None, None), ("tensordock-dal-1", "US", "united_states"),
                   ("tensordock-fra-1", "DE", "eu_west")],
    "datacrunch": [("FIN-01", "FI", "eu_north"), ("FIN-02", "FI", "eu_north"),
                   ("ICE-01", "IS", "eu_north")],
}

ALL_IMAGES = ["ubuntu_22_cuda_12", "cuda_12_1_pytorch_2_2", "cuda_12_4_pytorch_2_5",
              "cuda_12_6_pytorch_2_7", "stable_diffusion", "axolotl", "bittensor",
              "vllm_llama_8b", "custom_template", "prime_rl"]

RUNPOD_DISK_INFO = ("Runpod uses 40GB of disk size for the filesystem. Only additional disk "
                    "size is available for the user.")

STOCK = ["Available", "High", "Medium", "Low"]


def gen_offer(rng, gpu_type=None, gb=None, cloud=None, base=None, provider=None,
              location=None, count=None, multinode=False):
    """One offer with every key present.  Unset arguments are drawn from rng."""
    if gpu_type is None:
        gpu_type, gb, clouds, base = rng.choice(GPU_MODELS)
        cloud = rng.choice(clouds)
    provider = provider or rng.choice(sorted(LOCATIONS))
    data_center, country, region = location or rng.choice(LOCATIONS[provider])
    count = count or rng.choice([1, 1, 2, 4, 8])
    cloud_id, socket_name = cloud

    community = (not multinode and provider in ("runpod", "tensordock")
                 and rng.random() < 0.4)
    spot = not community and not multinode and rng.random() < 0.1
    price = round(base * count * rng.uniform(0.9, 1.3) * (0.5 if spot else 1.0), 4)
    prices = {"onDemand": None if community else price,
              "communityPrice": round(price * 0.75, 4) if community else None,
              "isVariable": True if provider == "tensordock" else None,
              "currency": "USD"}

    if provider == "runpod":
        disk = spec(120, 120, 3000, 0.00014, 1, False, RUNPOD_DISK_INFO)
    elif provider == "tensordock":
        disk = spec(20, 100, 2000, 0.0001, 10, False, None)
    else:
        disk = spec(None, 100 * count, None, None, None, True, None)
    vcpu_per, mem_per = rng.choice([(8, 64), (14, 125), (16, 251), (24, 180)])
    if provider == "tensordock":
        vcpu = spec(2, min(26, 6 * count), 12 * count, 0.005, 2, None, None)
        memory = spec(8, 32 * count, 128 * count, 0.002, 4, None, None)
    else:
        vcpu = spec(default=vcpu_per * count)
        memory = spec(default=mem_per * count)

    roll = rng.random()
    if roll < 0.03:
        images = None
    elif roll < 0.25:
        images = ["ubuntu_22_cuda_12"]              # single image: no prompt in the CLI
    elif roll < 0.4:
        images = ["cuda_12_4_pytorch_2_5"]
    else:
        images = rng.sample(ALL_IMAGES, rng.randint(2, len(ALL_IMAGES)))

    return {
        "cloudId": cloud_id,
        "gpuType": gpu_type,
        "socket": socket_name,
        "provider": provider,
        "region": region,
        "dataCenter": data_center,
        "country": country,
        "gpuCount": count,
        "gpuMemory": gb * count,                    # whole offer, not per GPU
        "disk": disk,
        "sharedDisk": spec(),
        "vcpu": vcpu,
        "memory": memory,
        "internetSpeed": rng.choice([None, None, 25, 100]),
        "interconnect": 3200 if multinode else rng.choice([None, None, 100]),
        "interconnectType": "InfiniBand" if multinode else rng.choice([None, "NVLink", "PCIe"]),
        "provisioningTime": rng.choice([None, 5, 15]),
        "stockStatus": rng.choice(STOCK),
        "security": "community_cloud" if community else "secure_cloud",
        "prices": prices,
        "images": images,
        "isSpot": True if spot else rng.choice([None, False]),
        "prepaidTime": None,
    }


def gen_offers(rng, n):
    """n generated /gpus offers; from 10 up, 5 of them are the nasty ones."""
    offers = []
    if n >= 10:
        h100 = GPU_MODELS[0]
        nasty = [
            # provider with a space and a slash
            gen_offer(rng, h100[0], h100[1], h100[2][0], h100[3], provider="evil/provider x",
                      location=("EVIL-1", "US", "united_states"), count=1),
            # data center ".."
            gen_offer(rng, "A100_80GB", 80, ("NVIDIA A100 80GB PCIe", "PCIe"), 1.59,
                      provider="hyperstack", location=("..", "NO", "eu_north"), count=2),
            # every price null
            gen_offer(rng, "L40S_48GB", 48, ("NVIDIA L40S", "PCIe"), 0.86,
                      provider="lambdalabs", location=("us-west-2", "US", "united_states"),
                      count=1),
            # gpuType with a space
            gen_offer(rng, "RTX 3090_24GB", 24, ("NVIDIA GeForce RTX 3090", "PCIe"), 0.22,
                      provider="tensordock", location=("tensordock-dal-1", "US", "united_states"),
                      count=1),
        ]
        nasty[2]["prices"] = {"onDemand": None, "communityPrice": None,
                              "isVariable": None, "currency": None}
        offers.extend(nasty)
    while len(offers) < n - (1 if n >= 10 else 0):
        offers.append(gen_offer(rng))
    if n >= 10:
        # a true duplicate: identical in every field to another offer
        offers.append(copy.deepcopy(offers[len(offers) // 2]))
    rng.shuffle(offers)
    return offers


def gen_multinode(rng):
    h100 = ("H100_80GB", 80, ("NVIDIA H100 80GB HBM3", "SXM5"), 2.49)
    a100 = ("A100_80GB", 80, ("NVIDIA A100-SXM4-80GB", "SXM4"), 1.59)
    plan = [
        (h100, "hyperstack", ("CANADA-1", "CA", "canada"), 16),
        (h100, "hyperstack", ("CANADA-1", "CA", "canada"), 32),
        (h100, "datacrunch", ("FIN-01", "FI", "eu_north"), 16),
        (h100, "lambdalabs", ("us-east-1", "US", "united_states"), 32),
        (a100, "datacrunch", ("FIN-02", "FI", "eu_north"), 16),
        (a100, "hyperstack", ("NORWAY-1", "NO", "eu_north"), 32),
    ]
    return [gen_offer(rng, m[0], m[1], m[2], m[3], provider=p, location=loc,
                      count=c, multinode=True)
            for m, p, loc, c in plan]


# --------------------------------------------------------------------------
# --dataset full: what the description allows beside the classic data

# Ids of the full dataset's pods: cm9zq1x2a01SSl508abcdefgh.
def full_id(n):
    return "cm9zq1x2a%04dl508abcdefgh" % (100 + n)


def add_full_dataset(state, rng):
    """Adds, following the description's schemas exactly: a pod in every
    PodStatusEnum value, ACTIVE pods whose installation failed (ERROR +
    installationFailure), stoppedPriceHr/provisioningPriceHr null and set,
    offers out of stock (Unavailable) and with prepaidTime, billing rows per
    resource (wallet recent_billings) and history rows of every
    ResourceType.  Deterministic (rng is the data generator)."""
    host = "203.0.113.200"
    base = dict(gpuName="H100_80GB", gpuCount=1, socket="SXM5", providerType="hyperstack",
                walletId=WALLET_ID, priceHr=2.49, basePriceHr=2.49, baseCurrency="USD",
                environmentType="ubuntu_22_cuda_12", attachedResources=[], isSpot=False,
                autoRestart=False, resources={"disk": 100, "memory": 180, "vcpus": 24,
                                              "shared_disk": None})
    plan = [
        # (status, installationStatus, progress, failure, stoppedPriceHr, provisioningPriceHr)
        ("PROVISIONING", "PENDING", None, None, None, 0.5),
        ("PENDING", "PENDING", None, None, 0.02, None),
        ("ACTIVE", "ACTIVE", 55, None, 0.02, 0.5),
        ("ACTIVE", "FINISHED", 100, None, None, None),
        ("ACTIVE", "ERROR", 30, "Failed to pull image: manifest unknown", 0.02, 0.0),
        ("STOPPED", "FINISHED", 100, None, 0.02, 0.0),
        ("STOPPED", "FINISHED", 100, None, None, None),
        ("ERROR", "ERROR", 10, "Out of capacity", None, None),
        ("DELETING", "FINISHED", 100, None, 0.02, 0.0),
        ("TERMINATED", "TERMINATED", 100, None, 0.02, 0.0),
        ("UNKNOWN", "PENDING", None, None, None, None),
    ]
    for n, (status, inst, progress, failure, stopped, prov) in enumerate(plan):
        created = "2026-05-06T%02d:00:00.000Z" % n
        up = status == "ACTIVE" and inst == "FINISHED"
        state.pods.append(make_pod(
            **base, id=full_id(n), name="full-%s-%d" % (status.lower(), n), status=status,
            installationStatus=inst, installationProgress=progress, installationFailure=failure,
            createdAt=created, updatedAt=created, stoppedPriceHr=stopped,
            provisioningPriceHr=prov, sshConnection=("root@%s -p 22" % host) if up else None,
            ip=host if up else None, primePortMapping=ssh_port_mapping(22) if up else [],
            terminatedAt="2026-05-06T23:00:00.000Z" if status == "TERMINATED" else None))

    # offers: out of stock, and prepaid ones (prepaidTime hours charged at order)
    h100 = GPU_MODELS[0]
    extra = []
    for stock, prepaid, loc in (("Unavailable", None, ("US-1", "US", "united_states")),
                                ("Unavailable", None, ("NORWAY-1", "NO", "eu_north")),
                                ("Available", 24.0, ("CANADA-1", "CA", "canada")),
                                ("Low", 168.0, ("US-1", "US", "united_states"))):
        o = gen_offer(rng, h100[0], h100[1], h100[2][0], h100[3], provider="hyperstack",
                      location=loc, count=2)
        o.update(stockStatus=stock, prepaidTime=prepaid, images=["ubuntu_22_cuda_12"])
        extra.append(o)
    state.gpus.extend(extra)

    # history: one row of each ResourceType beside the classic Instance rows
    for n, rtype in enumerate(RESOURCE_TYPES):
        state.history.append({
            "id": "cm9yy0%03dl508fullhist%02d" % (n, n),
            "name": "%s-%d" % (rtype.lower(), n), "providerType": "hyperstack",
            "provisionedBy": None if n % 2 else "user@example.com", "type": rtype,
            "createdAt": "2026-04-2%dT10:00:00.000Z" % n,
            "terminatedAt": None if n == 0 else "2026-04-2%dT12:00:00.000Z" % n,
            "gpuName": "H100_80GB" if rtype in ("Instance", "Cluster") else "CPU_NODE",
            "gpuCount": 16 if rtype == "Cluster" else (1 if rtype == "Instance" else 0),
            "socket": "SXM5" if rtype in ("Instance", "Cluster") else None,
            "priceHr": 2.49 if rtype == "Instance" else 0.05,
            "userId": USER_ID, "teamId": None,
            "totalBilledPrice": 4.98 if rtype == "Instance" else 0.1})

    # billing rows (BillingEntry), newest first as the API sorts them
    rows = []
    kinds = [("compute", full_id(3)), ("compute", full_id(5)), ("disks", "disk_full_1"),
             ("sandboxes", "sbx_full_1"), ("training", "rft_full_1"),
             ("inference", "inf_full_1"), ("images", "img_full_1"), ("compute", None)]
    for n, (rtype, rid) in enumerate(kinds):
        t = "2026-05-07T%02d:00:00Z" % (23 - n)
        rows.append({"id": "bill_full_%d" % n, "created_at": "2026-05-06T00:00:00Z",
                     "updated_at": t, "last_billed_at": None if n == len(kinds) - 1 else t,
                     "amount_usd": round(0.25 * (n + 1), 4), "currency": "USD",
                     "resource_type": rtype, "resource_id": rid})
    state.wallet["recent_billings"] = rows + state.wallet["recent_billings"]
    state.wallet["total_billings"] = len(state.wallet["recent_billings"])


# --------------------------------------------------------------------------
# state

class State:
    """Everything the server knows.  All access goes through self.lock."""

    def __init__(self, args):
        self.lock = threading.RLock()
        self.args = args
        self.key = args.key
        self.balance = float(args.balance)
        self.delete_204 = args.delete_204
        fixtures = Path(args.fixtures)

        # ssh endpoint given to the demo pod and to created pods
        self.ssh_conn = self.ssh_ip = self.ssh_port = None
        if args.ssh:
            user, _, hostport = args.ssh.rpartition("@")
            host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "22")
            self.ssh_ip, self.ssh_port = host, int(port)
            self.ssh_conn = "%s@%s -p %d" % (user or "root", host, self.ssh_port)
        self.node_endpoints = [parse_ssh_endpoint(e) for e in args.ssh_node]

        # Separate generators: data, fault dice and new ids never disturb
        # one another, so a run is repeatable for a given --seed.
        data_rng = random.Random(args.seed)
        self.fault_rng = random.Random("faults-%s" % args.seed)
        self.id_rng = random.Random("ids-%s" % args.seed)

        # --- offers
        recorded = json.loads((fixtures / "availability_response.json").read_text())["items"]
        legacy = json.loads((fixtures / "legacy" / "availability_legacy_response.json").read_text())
        legacy_flat = [o for offers in legacy.values() for o in offers]  # no region: kept as is
        self.gpus = recorded + legacy_flat + gen_offers(data_rng, args.offers)
        self.multinode = gen_multinode(data_rng)
        self.summary_fixture = json.loads((fixtures / "availability_summary.json").read_text())

        # --- pods
        pods_list = json.loads((fixtures / "synthetic" / "pods_list.json").read_text())["data"]
        stopped = json.loads((fixtures / "synthetic" / "pod_get_stopped.json").read_text())
        self.pods = [normalize_pod(p) for p in pods_list + [stopped]]
        self.pods += self._special_pods() + self._gen_pods(data_rng, args.pods)

        # --- history, wallet
        self.history = json.loads((fixtures / "synthetic" / "pods_history.json").read_text())["data"]
        for h in self.history:
            # the synthetic file's "pod" is made up; ResourceType says Instance
            if h.get("type") not in RESOURCE_TYPES:
                h["type"] = "Instance"
        self.history += copy.deepcopy(HISTORY_EXTRA)
        self.wallet = json.loads((fixtures / "from_tests" / "billing_wallet.json").read_text())
        self.id_rng_ssh = random.Random("ssh-keys-%s" % args.seed)
        ssh_keys_init(self, args)

        # --- the OpenAPI description, the dataset's deliberate deviations, knobs
        self.spec = openapi_check.load()
        self.check = args.check_responses
        self.off_schema = list(OFF_SCHEMA_CLASSIC)
        self.list_lag = float(args.list_lag)      # new pods listed only after this
        self.delete_lag = float(args.list_lag)    # deleted pods DELETING for this
        self.slow_create = {"secs": 0.0, "lose": False}
        self.hidden = {}    # pod id -> GET /pods pages that still omit it
        if args.dataset == "full":
            add_full_dataset(self, data_rng)

        # --- admin
        self.counts = {}
        self.requests = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.faults = []
        # requests a slow fault or slow_create holds now (stats' "held");
        # /_admin/release answers them at once
        self.held = 0
        self.hold_cv = threading.Condition(threading.Lock())
        self.release_gen = 0
        self.reset_stats()

    # ---- pods: construction ------------------------------------------------

    def _special_pods(self):
        base = dict(gpuName="A100_80GB", gpuCount=1, socket="PCIe", providerType="runpod",
                    userId=USER_ID, walletId=WALLET_ID, priceHr=1.6568, basePriceHr=1.6568,
                    stoppedPriceHr=0.0, provisioningPriceHr=0.0, baseCurrency="USD",
                    environmentType="ubuntu_22_cuda_12", attachedResources=[],
                    isSpot=False, autoRestart=False)

        def pod(pid, name, created, status="ACTIVE", inst="FINISHED", progress=100,
                ssh="root@203.0.113.50 -p 22", ip="203.0.113.50", port=22, **extra):
            fields = dict(base, id=pid, name=name, createdAt=created, updatedAt=created,
                          status=status, installationStatus=inst, installationProgress=progress,
                          sshConnection=ssh, ip=ip,
                          primePortMapping=ssh_port_mapping(port) if ssh else None)
            fields.update(extra)
            return make_pod(**fields)

        return [
            pod(ID_INSTALLING, "installing-1", "2026-05-03T09:00:00.000Z",
                inst="ACTIVE", progress=40, ssh=None, ip="203.0.113.41"),
            pod(ID_PENDING, "pending-1", "2026-05-03T09:05:00.000Z", status="PENDING",
                inst="PENDING", progress=None, ssh=None, ip=None),
            pod(ID_ERROR, "error-1", "2026-05-03T09:10:00.000Z", status="ERROR",
                inst="ERROR", progress=10, ssh=None, ip=None,
                installationFailure="Failed to pull image: manifest unknown"),
            pod(ID_DUP_1, "dup", "2026-05-04T10:00:00.000Z"),
            pod(ID_DUP_2, "dup", "2026-05-04T10:01:00.000Z", gpuName="H100_80GB",
                socket="SXM5", priceHr=2.7068, basePriceHr=2.7068),
            pod(ID_SPACE, "my pod", "2026-05-04T11:00:00.000Z"),
            pod(ID_SLASH, "a/b", "2026-05-04T11:01:00.000Z"),
            pod(ID_DOTDOT, "..", "2026-05-04T11:02:00.000Z"),
            pod(ID_NULLNAME, None, "2026-05-04T11:03:00.000Z"),
            pod(ID_NAME_IS_ID, ID_STOPPED, "2026-05-04T11:04:00.000Z"),
            pod(ID_DEMO, "demo", "2026-05-05T08:00:00.000Z", ssh=self.ssh_conn,
                ip=self.ssh_ip, port=self.ssh_port),
        ]

    def _gen_pods(self, rng, n):
        kinds = ["ACTIVE", "ACTIVE", "INSTALLING", "PENDING", "STOPPED", "ERROR"]
        start = parse_iso("2026-05-10T00:00:00.000Z")
        pods = []
        for i in range(1, n + 1):
            gpu_type, _gb, clouds, base = rng.choice(GPU_MODELS)
            count = rng.choice([1, 2, 4, 8])
            price = round(base * count * rng.uniform(0.9, 1.3), 4)
            kind = rng.choice(kinds)
            created = iso(start + i * 600)
            host = "203.0.113.%d" % (100 + i % 150)   # TEST-NET: never reachable
            status = "ACTIVE" if kind == "INSTALLING" else kind
            finished = kind == "ACTIVE"
            pods.append(make_pod(
                id=cuid(rng), name="gen-%04d" % i, gpuName=gpu_type, gpuCount=count,
                socket=rng.choice(clouds)[1], status=status,
                installationStatus="FINISHED" if finished or kind == "STOPPED"
                else ("ACTIVE" if kind == "INSTALLING" else None),
                installationProgress=100 if finished else (rng.randint(1, 99) if kind == "INSTALLING" else None),
                installationFailure="Out of capacity" if kind == "ERROR" else None,
                createdAt=created, updatedAt=created,
                providerType=rng.choice(sorted(LOCATIONS)), userId=USER_ID, walletId=WALLET_ID,
                attachedResources=[],
                primePortMapping=ssh_port_mapping(22) if finished else None,
                sshConnection=("root@%s -p 22" % host) if finished else ([None] if kind == "STOPPED" else None),
                ip=host if kind in ("ACTIVE", "INSTALLING") else ([None] if kind == "STOPPED" else None),
                priceHr=price, basePriceHr=price, stoppedPriceHr=round(price * 0.01, 4),
                provisioningPriceHr=0.0, baseCurrency="USD",
                environmentType="ubuntu_22_cuda_12", isSpot=False, autoRestart=False))
        return pods

    def new_id(self):
        existing = {p["id"] for p in self.pods} | {h["id"] for h in self.history}
        while True:
            pid = cuid(self.id_rng)
            if pid not in existing:
                return pid

    # ---- pods: the time-driven life cycle of created pods -----------------

    def render(self, pod):
        """The pod as the API shows it now.

        Pods created through POST carry a private '_life' record; their
        status is derived from the time since creation at every request:
        PROVISIONING for provisioning_secs (default 0), PENDING until
        pending_secs (installationStatus PENDING), then ACTIVE with
        installationStatus ACTIVE and progress 0->99 for install_secs, then
        ACTIVE/FINISHED with ssh and ip.  A pod being deleted (see
        terminate) is DELETING."""
        out = {k: copy.deepcopy(v) for k, v in pod.items() if not k.startswith("_")}
        if pod.get("_deleting") is not None:
            out.update(status="DELETING")
            return out
        life = pod.get("_life")
        if not life:
            return out
        elapsed = time.monotonic() - life["t0"]
        pending, install = life["pending"], life["install"]
        if elapsed < pending:
            status = "PROVISIONING" if elapsed < life.get("provisioning", 0.0) else "PENDING"
            out.update(status=status, installationStatus="PENDING", installationProgress=None,
                       sshConnection=None, ip=None, primePortMapping=None)
        elif elapsed < pending + install:
            progress = min(99, int(99 * (elapsed - pending) / install)) if install > 0 else 99
            out.update(status="ACTIVE", installationStatus="ACTIVE",
                       installationProgress=progress, sshConnection=None, ip=None,
                       primePortMapping=None, updatedAt=iso(life["wall0"] + pending))
        else:
            nodes = life["nodes"]
            ssh, ip = self.ssh_conn, self.ssh_ip
            if nodes > 1:   # multi-node pods list one connection per node
                ssh, ip = self.cluster_endpoints(nodes)
                out["clusterId"] = life.get("cluster")
            out.update(status="ACTIVE", installationStatus="FINISHED", installationProgress=100,
                       sshConnection=ssh, ip=ip,
                       primePortMapping=ssh_port_mapping(self.ssh_port) if ssh else None,
                       updatedAt=iso(life["wall0"] + pending + install))
        return out

    # ---- offers -------------------------------------------------------------

    def find_offer(self, pod_req, provider_type):
        """First current offer matching the create request (both endpoints)."""
        matches = []
        for multinode, offers in ((False, self.gpus), (True, self.multinode)):
            for o in offers:
                if (o.get("cloudId") == pod_req.get("cloudId")
                        and o.get("gpuType") == pod_req.get("gpuType")
                        and o.get("gpuCount") == pod_req.get("gpuCount")
                        and o.get("socket") == pod_req.get("socket")
                        and o.get("dataCenter") == pod_req.get("dataCenterId")
                        and o.get("provider") == provider_type):
                    matches.append((o, multinode))
        if not matches:
            return None, False
        # Offers can differ only in security tier (4.3): honour it when sent.
        wanted = pod_req.get("security")
        for o, multinode in matches:
            if wanted and o.get("security") == wanted:
                return o, multinode
        return matches[0]

    def summary(self):
        """The recorded gpu-summary, plus entries computed from the offers
        for GPU types the recording does not mention (so the keys list
        every gpuType that /gpus can return)."""
        out = copy.deepcopy(self.summary_fixture)
        groups = {}
        for o in self.gpus + self.multinode:
            groups.setdefault(o.get("gpuType"), {}).setdefault(str(o.get("gpuCount")), []).append(o)

        def cheapest(offers):
            def low(values):
                values = [v for v in values if v is not None]
                return min(values) if values else None
            return {"onDemand": low(o["prices"].get("onDemand") for o in offers if not o.get("isSpot")),
                    "communityPrice": low(o["prices"].get("communityPrice") for o in offers),
                    "spotPrice": low(offer_price(o) for o in offers if o.get("isSpot"))}

        for gpu_type in sorted(g for g in groups if g not in out):
            entry = {}
            for count in sorted(groups[gpu_type], key=int):
                offers = groups[gpu_type][count]
                per = {"cheapest": cheapest(offers)}
                for region in sorted({o.get("region") for o in offers if o.get("region")}):
                    per[region] = cheapest([o for o in offers if o.get("region") == region])
                entry[count] = per
            out[gpu_type] = entry
        return out

    # ---- admin --------------------------------------------------------------

    def hold(self, secs):
        """Holds the calling request for secs, or until /_admin/release."""
        with self.hold_cv:
            self.held += 1
            gen = self.release_gen
            self.hold_cv.wait_for(lambda: self.release_gen != gen, timeout=secs)
            self.held -= 1

    def reset_stats(self):
        self.counts = {k: 0 for k in KNOWN_ENDPOINTS}
        self.requests.clear()

    def pick_fault(self, key, query=None):
        """The first fault rule that fires for this request, or None.

        drop_post only ever applies to POST /pods.  A rule with "query"
        ({"offset": "100"}) matches only requests with those parameters.
        A rule's dice are only rolled for requests it matches, from a
        seeded generator."""
        for rule in self.faults:
            if rule["count"] is not None and rule["fired"] >= rule["count"]:
                continue
            if rule["match"] and not key.startswith(rule["match"]):
                continue
            if any((query or {}).get(k, [None])[-1] != str(v)
                   for k, v in (rule.get("query") or {}).items()):
                continue
            if rule["kind"] == "drop_post" and key != "POST /pods":
                continue
            if self.fault_rng.random() < rule["rate"]:
                rule["fired"] += 1
                return rule
        return None

    # ---- API endpoints: each returns (status, json_object) ----------------
    # Callers hold self.lock.

    def api_availability(self, offers, query):
        errors = []
        page = q_int(query, "page", 1, errors, minimum=1)
        size = q_int(query, "page_size", 100, errors, minimum=1, maximum=100)
        gpu_count = q_int(query, "gpu_count", None, errors)
        if errors:
            return 422, verr_response(errors)
        gpu_type = (query.get("gpu_type") or [None])[-1]
        regions = [r for r in query.get("regions", []) if r]
        items = [o for o in offers
                 if (gpu_type is None or o.get("gpuType") == gpu_type)
                 and (gpu_count is None or o.get("gpuCount") == gpu_count)
                 and (not regions or o.get("region") in regions)]
        items = disk_filter_offers(self, items, query)
        start = (page - 1) * size
        return 200, {"items": copy.deepcopy(items[start:start + size]), "totalCount": len(items)}

    def api_pods_list(self, query):
        errors = []
        offset = q_int(query, "offset", 0, errors, minimum=0)
        limit = q_int(query, "limit", 100, errors, minimum=1, maximum=100)
        if errors:
            return 422, verr_response(errors)
        now = time.monotonic()
        hidden = {pid for pid, pages in self.hidden.items() if pages > 0}
        for pid in hidden:
            self.hidden[pid] -= 1
        listed = [p for p in self.pods if p.get("_listed_after", 0) <= now
                  and p["id"] not in hidden]
        data = [self.render(p) for p in listed[offset:offset + limit]]
        out = {"total_count": len(listed), "offset": offset, "limit": limit, "data": data}
        if self.args.omit_total_count:   # optional in the description (default 0)
            del out["total_count"]
        return 200, out

    def api_pod_get(self, pod_id):
        for p in self.pods:
            if p["id"] == pod_id:
                return 200, self.render(p)
        return 404, {"detail": "Pod not found"}

    def api_pods_status(self, query):
        wanted = {i for i in query.get("pod_ids", []) if i}
        data = []
        for p in self.pods:
            if wanted and p["id"] not in wanted:
                continue
            r = self.render(p)
            data.append({"podId": r["id"], "providerType": r["providerType"], "status": r["status"],
                         "ip": r.get("ip"), "sshConnection": r.get("sshConnection"),
                         "priceHr": r.get("priceHr"), "primePortMapping": r.get("primePortMapping"),
                         "installationStatus": r.get("installationStatus"),
                         "installationFailure": r.get("installationFailure"),
                         "installationProgress": r.get("installationProgress")})
        return 200, {"data": data}

    def api_history(self, query):
        errors = []
        offset = q_int(query, "offset", 0, errors, minimum=0)
        limit = q_int(query, "limit", 100, errors, minimum=1, maximum=100)
        if errors:
            return 422, verr_response(errors)
        entries = list(self.history)
        sort_by = (query.get("sort_by") or [None])[-1]
        if sort_by in ("terminatedAt", "createdAt"):
            desc = (query.get("sort_order") or ["desc"])[-1] != "asc"
            present = [e for e in entries if e.get(sort_by)]
            absent = [e for e in entries if not e.get(sort_by)]   # nulls always last
            present.sort(key=lambda e: parse_iso(e[sort_by]) or 0, reverse=desc)
            entries = present + absent
        return 200, {"total_count": len(entries), "offset": offset, "limit": limit,
                     "data": copy.deepcopy(entries[offset:offset + limit])}

    def api_wallet(self, query):
        errors = []
        limit = q_int(query, "limit", 20, errors, minimum=1, maximum=100)
        offset = q_int(query, "offset", 0, errors, minimum=0)
        if errors:
            return 422, verr_response(errors)
        w = copy.deepcopy(self.wallet)
        team = (query.get("teamId") or [None])[-1]
        if team:
            w["team_id"] = team
        w["balance_usd"] = self.balance
        w["total_billings"] = len(w["recent_billings"])
        w["recent_billings"] = w["recent_billings"][offset:offset + limit]
        return 200, w

    def api_create(self, op, body, body_error):
        if body_error:
            return 422, {"errors": [{"param": "body", "details": "invalid JSON: %s" % body_error}]}
        problems = self.waive(op.check_body(body) if body is not None else ["body: field required"])
        if problems:
            return 422, openapi_check.error_response(problems)
        pod_req = dict(body["pod"])
        pod_req["gpuCount"] = int(pod_req["gpuCount"])  # lax: "2" is 2
        provider_type = body["provider"]["type"]
        team = (body.get("team") or {}).get("teamId")
        bad_key = ssh_key_create_problem(self, pod_req)
        if bad_key:
            return bad_key
        offer, multinode = self.find_offer(pod_req, provider_type)
        refused = disk_check_pod(self, body, offer) if offer is not None else None
        if refused:
            return refused
        if offer is None:
            return 422, {"errors": [{"param": "pod", "details":
                "No available offer matches cloudId=%r gpuType=%r gpuCount=%r socket=%r "
                "dataCenterId=%r provider=%r" % (
                    pod_req.get("cloudId"), pod_req.get("gpuType"), pod_req.get("gpuCount"),
                    pod_req.get("socket"), pod_req.get("dataCenterId"), provider_type)}]}
        price = offer_price(offer)
        max_price = pod_req.get("maxPrice")
        if max_price is not None and price is not None and price > float(max_price):
            # the description's 422 shape, naming the field that refused it
            return 422, {"errors": [{"param": "pod.maxPrice", "details":
                "The offer costs %s USD/h, above maxPrice %s" % (price, max_price)}]}
        if self.balance <= 0:
            return 402, {"detail": "Payment required"}

        now = time.time()
        pid = self.new_id()
        pod = make_pod(
            id=pid, name=pod_req.get("name") or "pod-" + pid[-8:], gpuName=offer["gpuType"],
            gpuCount=offer["gpuCount"], socket=offer.get("socket"), status="PENDING",
            createdAt=iso(now), updatedAt=iso(now), providerType=offer.get("provider") or "",
            teamId=team, userId=USER_ID, walletId=WALLET_ID, attachedResources=[],
            priceHr=price if price is not None else 0.0,
            basePriceHr=price, stoppedPriceHr=None, provisioningPriceHr=None,
            baseCurrency=(offer.get("prices") or {}).get("currency") or "USD",
            environmentType=pod_req.get("image") or "ubuntu_22_cuda_12",
            jupyterPassword=pod_req.get("jupyterPassword"),
            customTemplateId=pod_req.get("customTemplateId"),
            isSpot=bool(offer.get("isSpot")), autoRestart=bool(pod_req.get("autoRestart")))
        pod["_life"] = {"t0": time.monotonic(), "wall0": now,
                        "provisioning": self.args.provisioning_secs,
                        "pending": max(self.args.pending_secs, self.args.provisioning_secs),
                        "install": self.args.install_secs,
                        "nodes": max(1, offer["gpuCount"] // 8) if multinode else 1}
        if multinode:
            pod["_life"]["cluster"] = self.new_id()
        if self.list_lag > 0:
            pod["_listed_after"] = time.monotonic() + self.list_lag
        pod["_disks"] = list(body.get("disks") or [])
        self.pods.append(pod)
        return 200, self.render(pod)

    def waive(self, problems):
        """problems minus the dataset's deliberate deviations."""
        return [p for p in problems if not any(r.search(p) for r in self.off_schema)]

    def api_pod_log(self, pod_id, query):
        """GET /pods/{id}/log: the description gives no schema for the
        answer ({}); this answers the last `tail` lines as a string, a list or
        {"logs": [lines]} (LOG_SHAPES)."""
        errors = []
        tail = q_int(query, "tail", 100, errors, minimum=0)
        if errors:
            return 422, verr_response(errors)
        for p in self.pods:
            if p["id"] == pod_id:
                r = self.render(p)
                name = r.get("name") or pod_id
                lines = ["%s log line %d" % (name, i) for i in (1, 2, 3)]
                if r.get("installationFailure"):
                    lines[-1] = "installation failed: %s" % r["installationFailure"]
                lines = lines[-tail:] if tail else []
                # primefs must read each shape: a string, a list, an object
                shape = LOG_SHAPES.get(pod_id, "object")
                if shape == "string":
                    return 200, "".join(line + "\n" for line in lines)
                if shape == "list":
                    return 200, lines
                return 200, {"logs": lines}
        return 404, {"detail": "Pod not found"}

    def terminate(self, pod_id):
        """Remove every pod with this id (the fixture lists one id twice) and
        add one history entry for it; with a delete lag (/_admin/lag) the
        pod is first DELETING for that long (see purge).  Returns the new
        status (DELETING or TERMINATED), or None when unknown."""
        victims = [p for p in self.pods if p["id"] == pod_id]
        if not victims:
            return None
        if self.delete_lag > 0:
            for p in victims:
                if p.get("_deleting") is None:
                    p["_deleting"] = time.monotonic() + self.delete_lag
            return "DELETING"
        self._bury(pod_id, victims)
        return "TERMINATED"

    def purge(self):
        """Ends the DELETING pods whose delete lag is over."""
        now = time.monotonic()
        done = {p["id"] for p in self.pods
                if p.get("_deleting") is not None and p["_deleting"] <= now}
        for pod_id in done:
            self._bury(pod_id, [p for p in self.pods if p["id"] == pod_id])

    def _bury(self, pod_id, victims):
        self.pods = [p for p in self.pods if p["id"] != pod_id]
        life = victims[0].get("_life") or {}
        victims[0].pop("_deleting", None)
        r = self.render(victims[0])
        now = time.time()
        created = parse_iso(r.get("createdAt"))
        hours = max(0.0, (now - created) / 3600.0) if created is not None else 0.0
        price = r.get("priceHr") or 0.0
        # 5.3: these keys are required AND non-null, so nulls get stand-ins.
        self.history.insert(0, {
            "id": r["id"], "name": r.get("name") or "", "providerType": r.get("providerType") or "",
            "provisionedBy": None,
            "type": "Cluster" if max(life.get("nodes", 1), victims[0].get("_nodes", 1)) > 1
            else "Instance",
            "createdAt": r.get("createdAt") or iso(now), "terminatedAt": iso(now),
            "gpuName": r.get("gpuName") or "", "gpuCount": r.get("gpuCount") or 0,
            "socket": r.get("socket"), "priceHr": price, "userId": r.get("userId") or USER_ID,
            "teamId": r.get("teamId"), "totalBilledPrice": round(price * hours, 4)})

    # ---- multi-node pods (clusters) -----------------------------------------
    # The description (APIPodConfig) lists a cluster as ONE pod: its
    # sshConnection and ip are lists, one entry per node ("if there are
    # multiple nodes"), and it carries a clusterId; its history row's type
    # is Cluster.  Node 0 is --ssh's endpoint, node n --ssh-node's n-th.

    def cluster_endpoints(self, nodes):
        """(sshConnection list, ip list) of a ready pod of `nodes` nodes."""
        if not self.ssh_conn:
            return None, None
        ends = [(self.ssh_conn, self.ssh_ip)]
        for n in range(1, nodes):
            e = self.node_endpoints[(n - 1) % len(self.node_endpoints)] \
                if self.node_endpoints else ends[0]
            ends.append(e)
        return [e[0] for e in ends], [e[1] for e in ends]

    def admin_cluster(self, body):
        """/_admin/cluster {"name", "nodes"}: an ACTIVE pod of that many
        nodes (default 2), listed at once, as a cluster that finished
        installing."""
        nodes = max(2, int(body.get("nodes", 2)))
        ssh, ip = self.cluster_endpoints(nodes)
        now = iso(time.time())
        pod = make_pod(id=self.new_id(), name=body.get("name") or None, gpuName="H100_80GB",
                       gpuCount=8 * nodes, socket="SXM5", status="ACTIVE",
                       installationStatus="FINISHED", installationProgress=100,
                       createdAt=now, updatedAt=now, providerType="hyperstack",
                       priceHr=2.49 * 8 * nodes, environmentType="ubuntu_22_cuda_12",
                       attachedResources=[], sshConnection=ssh, ip=ip,
                       primePortMapping=ssh_port_mapping(self.ssh_port) if ssh else None)
        pod["clusterId"] = self.new_id()
        pod["_nodes"] = nodes   # its history row says Cluster (_bury)
        self.pods.append(pod)
        return 200, {"id": pod["id"], "clusterId": pod["clusterId"]}

    # ---- admin endpoints -----------------------------------------------------

    def admin(self, method, name, body):
        """Returns (status, json_object)."""
        if method == "GET" and name == "stats":
            return 200, {"counts": dict(self.counts), "requests": list(self.requests),
                         "held": self.held}
        if method != "POST":
            return 404, {"detail": "Not Found"}
        if not isinstance(body, dict):
            body = {}
        if name == "reset":
            self.reset_stats()
            return 200, {"ok": True}
        if name == "release":
            # every request held by a slow fault or slow_create answers now
            with self.hold_cv:
                self.release_gen += 1
                self.hold_cv.notify_all()
            return 200, {"ok": True}
        if name == "ssh_key":
            # registers a key once (again: nothing changes)
            same = [k for k in self.ssh_keys
                    if ssh_key_blob(k["publicKey"]) == ssh_key_blob(body["publicKey"])]
            if same:
                return 200, same[0]
            k = ssh_key_add(self, body.get("name") or "key", body["publicKey"].strip(),
                            primary=bool(body.get("primary", True)))
            return 200, k
        if name == "clear_faults":
            self.faults = []
            return 200, {"ok": True}
        if name == "fault":
            kind = str(body.get("kind"))
            if kind not in FAULT_KINDS:
                return 400, {"detail": "kind must be one of %s" % ", ".join(FAULT_KINDS)}
            rule = {"kind": kind, "rate": float(body.get("rate", 1.0)),
                    "count": None if body.get("count") is None else int(body["count"]),
                    "match": body.get("match") or None,
                    "retry_after": body.get("retry_after"),
                    "delay": float(body.get("delay", 1.0)), "fired": 0,
                    "query": body.get("query") if isinstance(body.get("query"), dict) else None}
            self.faults.append(rule)
            return 200, {"ok": True, "rules": len(self.faults)}
        if name == "lag":
            # {"secs": N} or {"list_secs": N, "delete_secs": M}
            self.list_lag = float(body.get("list_secs", body.get("secs", self.list_lag)))
            self.delete_lag = float(body.get("delete_secs", body.get("secs", self.delete_lag)))
            return 200, {"list_secs": self.list_lag, "delete_secs": self.delete_lag}
        if name == "slow_create":
            # {"secs": N, "lose": bool}: POST /pods/ creates the pod, then
            # answers N s later (or, with lose, resets the connection then)
            self.slow_create = {"secs": float(body.get("secs", 0.0)),
                                "lose": bool(body.get("lose", False))}
            return 200, dict(self.slow_create)
        if name == "balance":
            self.balance = float(body.get("balance", self.balance))
            return 200, {"balance": self.balance}
        if name == "wallet":
            # test control: replace the wallet's billing rows (newest first)
            if isinstance(body.get("recent_billings"), list):
                self.wallet["recent_billings"] = body["recent_billings"]
            return 200, {"rows": len(self.wallet["recent_billings"])}
        if name == "pods":
            result = {"added": [], "deleted": [], "set": 0}
            for p in body.get("add") or []:
                now = iso(time.time())
                pod = make_pod(id=self.new_id(), name=None, gpuName="A100_80GB", gpuCount=1,
                               socket="PCIe", status="ACTIVE", createdAt=now, updatedAt=now,
                               providerType="runpod", priceHr=1.0,
                               environmentType="ubuntu_22_cuda_12")
                pod.update(p)
                normalize_pod(pod)
                self.pods.append(pod)
                result["added"].append(pod["id"])
            for pid in body.get("delete") or []:
                if self.terminate(pid) is not None:
                    result["deleted"].append(pid)
            # {"hide": {"id": X, "pages": N}}: the next N GET /pods pages
            # omit the live pod X, as offset paging does while pods are
            # deleted elsewhere (GET /pods/X still shows it)
            hide = body.get("hide")
            if isinstance(hide, dict):
                self.hidden[str(hide.get("id"))] = int(hide.get("pages", 1))
                result["hidden"] = dict(self.hidden)
            changes = body.get("set")
            if changes:
                for i, p in enumerate(self.pods):
                    if p["id"] == changes.get("id"):
                        # the explicit fields win over the time-driven life cycle
                        frozen = self.render(p)
                        frozen.update(changes)
                        self.pods[i] = normalize_pod(frozen)
                        result["set"] += 1
            return 200, result
        if name == "cluster":
            return self.admin_cluster(body)
        if name == "offers":
            result = {"removed": 0, "stock_set": 0}

            def matches(o, m):
                return all(o.get(k) == v for k, v in m.items())
            if isinstance(body.get("remove"), dict):
                before = len(self.gpus) + len(self.multinode)
                self.gpus = [o for o in self.gpus if not matches(o, body["remove"])]
                self.multinode = [o for o in self.multinode if not matches(o, body["remove"])]
                result["removed"] = before - len(self.gpus) - len(self.multinode)
            # test control: {"add": [offer, ...]} lists these /gpus offers too
            for o in body.get("add") or []:
                self.gpus.append(copy.deepcopy(o))
                result["added"] = result.get("added", 0) + 1
            if isinstance(body.get("set_stock"), dict):
                m = body["set_stock"].get("match") or {}
                for o in self.gpus + self.multinode:
                    if matches(o, m):
                        o["stockStatus"] = body["set_stock"].get("stockStatus")
                        result["stock_set"] += 1
            return 200, result
        return 404, {"detail": "Not Found"}



# --------------------------------------------------------------------------
# disks: GET/POST /disks/, GET/PATCH/DELETE /disks/{id},
# GET /availability/disks, and the create-pod body's `disks` (by id).
# State lives on State as `disks` (APIDiskConfig objects plus private
# '_' keys) and `disk_offers` (the fixture), made on first use.

DISK_KEYS = {"GET /disks", "POST /disks", "GET /disks/{id}", "PATCH /disks/{id}",
             "DELETE /disks/{id}", "GET /availability/disks"}


def disk_state(state):
    if not hasattr(state, "disks"):
        fixtures = Path(state.args.fixtures)
        state.disk_offers = json.loads(
            (fixtures / "availability_disks.json").read_text())["items"]
        state.disks = []
    return state


def disk_render(state, d):
    out = {k: copy.deepcopy(v) for k, v in d.items() if not k.startswith("_")}
    # The pods attached: live pods created with this disk.
    out["pods"] = [p["id"] for p in state.pods
                   if d["id"] in p.get("_disks", ()) and p.get("_deleting") is None]
    return out


def disk_find(state, disk_id):
    for d in disk_state(state).disks:
        if d["id"] == disk_id:
            return d
    return None


def disk_create(state, op, body, body_error):
    if body_error:
        return 422, {"errors": [{"param": "body", "details": "invalid JSON: %s" % body_error}]}
    problems = state.waive(op.check_body(body) if body is not None else ["body: field required"])
    if problems:
        return 422, openapi_check.error_response(problems)
    req, provider = body["disk"], body["provider"]["type"]
    match = [o for o in disk_state(state).disk_offers
             if o.get("provider") == provider
             and (req.get("dataCenterId") is None or o.get("dataCenter") == req["dataCenterId"])
             and (req.get("country") is None or o.get("country") == req["country"])
             and o.get("stockStatus") != "Unavailable"]
    if not match:
        return 422, {"errors": [{"param": "disk", "details":
                                 "No disk offer in provider=%r dataCenterId=%r" % (
                                     provider, req.get("dataCenterId"))}]}
    offer = match[0]
    spec = offer.get("spec") or {}
    if spec.get("maxCount") is not None and req["size"] > spec["maxCount"]:
        return 422, {"errors": [{"param": "disk.size", "details": "too large"}]}
    if state.balance <= 0:
        return 402, {"detail": "Payment required"}
    now = time.time()
    price = round((spec.get("pricePerUnit") or 0.0) * req["size"], 8)
    d = {"id": state.new_id(), "name": req.get("name") or "disk", "createdAt": iso(now),
         "updatedAt": iso(now), "terminatedAt": None, "status": "ACTIVE",
         "providerType": provider, "size": req["size"],
         "info": {"dataCenterId": offer.get("dataCenter"), "country": offer.get("country")},
         "priceHr": price, "stoppedPriceHr": price, "provisioningPriceHr": 0.0,
         "userId": USER_ID, "teamId": (body.get("team") or {}).get("teamId"),
         "walletId": WALLET_ID, "pods": [], "clusters": [],
         "_dc": offer.get("dataCenter")}
    state.disks.append(d)
    return 200, disk_render(state, d)


def disk_delete(state, disk_id):
    d = disk_find(state, disk_id)
    if d is None:
        return 404, {"detail": "Disk not found"}
    r = disk_render(state, d)
    if r["pods"]:
        # the real server refuses to delete a disk a live pod uses
        return 422, {"errors": [{"param": "disk_id", "details":
                                 "Disk is attached to pods %s" % r["pods"]}]}
    state.disks.remove(d)
    now = time.time()
    created = parse_iso(r.get("createdAt")) or now
    state.history.insert(0, {
        "id": r["id"], "name": r["name"], "providerType": r["providerType"],
        "provisionedBy": None, "type": "Disk", "createdAt": r["createdAt"],
        "terminatedAt": iso(now), "gpuName": "", "gpuCount": 0, "socket": None,
        "priceHr": r["priceHr"], "userId": USER_ID, "teamId": r.get("teamId"),
        "totalBilledPrice": round((r["priceHr"] or 0) * max(0.0, now - created) / 3600, 4)})
    return 200, {"status": "TERMINATED"}


def disk_check_pod(state, body, offer):
    """The create-pod body's `disks`: each a known disk in the offer's data
    center (None: fine), else the (status, answer) refusing it."""
    ids = body.get("disks") or []
    for disk_id in ids:
        d = disk_find(state, disk_id)
        if d is None:
            return 422, {"errors": [{"param": "disks", "details": "Disk %s not found" % disk_id}]}
        if d["_dc"] != offer.get("dataCenter"):
            return 422, {"errors": [{"param": "disks", "details":
                                     "Disk %s is in %s, the offer in %s" % (
                                         disk_id, d["_dc"], offer.get("dataCenter"))}]}
    return None


def disk_filter_offers(state, items, query):
    """/availability/gpus?disks=ID...: offers in the disks' data centers."""
    ids = [i for i in query.get("disks", []) if i]
    if not ids:
        return items
    dcs = set()
    for disk_id in ids:
        d = disk_find(state, disk_id)
        dcs.add(d["_dc"] if d else None)
    return [o for o in items if len(dcs) == 1 and o.get("dataCenter") in dcs]


def disk_call(state, key, op, query, body, body_error, params):
    """The disk endpoints: (status, obj), or None for another key."""
    if key not in DISK_KEYS:
        return None
    disk_state(state)
    if key == "GET /availability/disks":
        errors = []
        page = q_int(query, "page", 1, errors, minimum=1)
        size = q_int(query, "page_size", 100, errors, minimum=1, maximum=100)
        if errors:
            return 422, verr_response(errors)
        items = state.disk_offers
        start = (page - 1) * size
        return 200, {"items": copy.deepcopy(items[start:start + size]), "totalCount": len(items)}
    if key == "GET /disks":
        errors = []
        offset = q_int(query, "offset", 0, errors, minimum=0)
        limit = q_int(query, "limit", 100, errors, minimum=1, maximum=100)
        if errors:
            return 422, verr_response(errors)
        data = [disk_render(state, d) for d in state.disks[offset:offset + limit]]
        return 200, {"total_count": len(state.disks), "offset": offset, "limit": limit,
                     "data": data}
    if key == "POST /disks":
        return disk_create(state, op, body, body_error)
    d = disk_find(state, params["id"])
    if key == "DELETE /disks/{id}":
        return disk_delete(state, params["id"])
    if d is None:
        return 404, {"detail": "Disk not found"}
    if key == "PATCH /disks/{id}":
        if body_error or not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return 422, {"errors": [{"param": "name", "details": "field required"}]}
        d["name"] = body["name"]
        return 200, {"status": "ok"}
    return 200, disk_render(state, d)


# --------------------------------------------------------------------------
# HTTP

def endpoint_key(template):
    """'/api/v1/pods/{pod_id}' -> '/pods/{id}': the fake's names for the
    documented operations (the counters in /_admin/stats use them)."""
    rel = template[len(API_PREFIX):].rstrip("/") or "/"
    return re.sub(r"\{[a-z_]+\}", "{id}", rel)


# The operations the fake implements (others documented answer 404).
IMPLEMENTED = {"GET /availability/gpus", "GET /availability/multi-node",
               "GET /availability/gpu-summary", "GET /pods", "POST /pods", "GET /pods/status",
               "GET /pods/history", "GET /pods/{id}", "DELETE /pods/{id}", "GET /pods/{id}/log",
               "GET /billing/wallet"} | DISK_KEYS


# --------------------------------------------------------------------------
# SSH keys: /ssh_keys/ (list, upload), /ssh_keys/{id} (delete, set primary),
# and the create body's sshKeyId, which must name a key of the account.

IMPLEMENTED.update({"GET /ssh_keys", "POST /ssh_keys", "DELETE /ssh_keys/{id}",
                    "PATCH /ssh_keys/{id}"})

SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256",
                 "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


def ssh_key_problem(text):
    """Why the server would refuse this public key text, or None: one line
    'TYPE BASE64 [comment]' whose blob starts with TYPE."""
    parts = text.strip().split()
    if "\n" in text.strip() or len(parts) < 2:
        return "Invalid SSH public key format"
    if parts[0] not in SSH_KEY_TYPES:
        return "Unsupported SSH key type %r" % parts[0][:40]
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, binascii.Error):
        return "Invalid SSH public key: bad base64"
    n = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if n != len(parts[0]) or blob[4:4 + n] != parts[0].encode():
        return "Invalid SSH public key: the key data does not match its type"
    return None


def ssh_key_blob(text):
    parts = text.split()
    return parts[1] if len(parts) > 1 else ""


def ssh_keys_init(state, args):
    state.ssh_keys = []
    for n, path in enumerate(args.ssh_pubkey or ()):
        ssh_key_add(state, "key-%d" % n, Path(path).read_text().strip(), primary=n == 0)


def ssh_key_add(state, name, public_key, primary=False):
    now = iso(time.time())
    key = {"id": cuid(state.id_rng_ssh), "userId": USER_ID, "name": name, "publicKey": public_key,
           "isPrimary": bool(primary), "isUserKey": True, "createdAt": now, "updatedAt": now}
    if primary:
        for k in state.ssh_keys:
            k["isPrimary"] = False
    state.ssh_keys.append(key)
    return key


def ssh_keys_call(state, key, query, body, body_error, params):
    """(status, obj) of the /ssh_keys operations."""
    if key == "GET /ssh_keys":
        offset = int((query.get("offset") or ["0"])[0])
        limit = int((query.get("limit") or ["100"])[0])
        rows = state.ssh_keys[offset:offset + limit]
        return 200, {"total_count": len(state.ssh_keys), "offset": offset, "limit": limit,
                     "data": copy.deepcopy(rows), "status": "success"}
    if key == "POST /ssh_keys":
        if body_error:
            return 422, {"errors": [{"param": "body", "details": "invalid JSON: %s" % body_error}]}
        if not isinstance(body, dict):
            return 422, {"errors": [{"param": "body", "details": "field required"}]}
        for f in ("name", "publicKey"):
            if not isinstance(body.get(f), str) or not body[f].strip():
                return 422, {"errors": [{"param": f, "details": "field required"}]}
        why = ssh_key_problem(body["publicKey"])
        if why:
            return 422, {"errors": [{"param": "publicKey", "details": why}]}
        blob = ssh_key_blob(body["publicKey"])
        if any(ssh_key_blob(k["publicKey"]) == blob for k in state.ssh_keys):
            return 422, {"errors": [{"param": "publicKey", "details": "This SSH key already exists"}]}
        k = ssh_key_add(state, body["name"], body["publicKey"].strip(),
                        primary=not state.ssh_keys)
        return 200, copy.deepcopy(k)
    found = [k for k in state.ssh_keys if k["id"] == params.get("id")]
    if not found:
        return 404, {"detail": "SSH key not found"}
    if key == "DELETE /ssh_keys/{id}":
        state.ssh_keys.remove(found[0])
        return 200, {"message": "SSH key deleted"}
    # PATCH: isPrimary must be true when given
    if body_error or not isinstance(body, dict) or body.get("isPrimary") is not True:
        return 422, {"errors": [{"param": "isPrimary", "details": "isPrimary must be true"}]}
    for k in state.ssh_keys:
        k["isPrimary"] = k is found[0]
    found[0]["updatedAt"] = iso(time.time())
    return 200, {"message": "Primary key updated", "updated_fields": {"isPrimary": True}}


def ssh_key_create_problem(state, pod_req):
    """The 404 a create body's unknown sshKeyId gets, or None."""
    kid = pod_req.get("sshKeyId")
    if kid is None or any(k["id"] == kid for k in state.ssh_keys):
        return None
    return 404, {"detail": "SSH key %s not found" % kid}



class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive
    server_version = "fake-prime-api/1.0"
    timeout = 120                          # drop idle keep-alive connections
    # Headers and body go out as two writes: with Nagle on, the body's last
    # segment waits for the client's delayed ACK (up to 40 ms a response on
    # a kept-alive connection), which a real server does not make clients
    # pay.
    disable_nagle_algorithm = True

    # -- connection setup/teardown -------------------------------------------

    def setup(self):
        ctx = self.server.ssl_context
        if ctx is not None:
            # The handshake happens here, in the connection's own thread:
            # wrapping the listening socket would run it inside accept(),
            # where one idle client blocks the whole server.
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True,
                                           do_handshake_on_connect=False)
            self.request.do_handshake()
        super().setup()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        if self.server.ssl_context is not None:
            # The server only knows the plain socket, now detached.
            try:
                self.request.close()
            except OSError:
                pass

    def log_request(self, code="-", size="-"):
        pass                               # we log our own line in _finish_log

    def log_message(self, fmt, *args):
        self.server.log("%s %s" % (self.address_string(), fmt % args))

    # -- plumbing ------------------------------------------------------------

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass                # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, obj=None, raw=None, headers=()):
        if status == 204:
            body = b""
        elif raw is not None:
            body = raw
        else:
            body = json.dumps(obj).encode()
        self.send_response(status)
        if status != 204:                   # 204 must not carry Content-Length
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _reset(self):
        """Close the connection without answering: RST thanks to SO_LINGER 0."""
        self.close_connection = True
        sock = self.request
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference that would defer the real close; wfile
        # does not (unbuffered), and stays open so the final flush is a no-op.
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    # -- dispatch ------------------------------------------------------------

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method):
        state = self.server.state
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        try:
            raw_body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(400, {"detail": "Bad request body framing"})
            return self._log(method, 400)
        body, body_error = None, None
        if raw_body.strip():
            try:
                body = json.loads(raw_body)
            except ValueError as e:
                body_error = str(e)

        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            name = path[len(ADMIN_PREFIX):].strip("/")
            with state.lock:
                try:
                    status, obj = state.admin(method, name, body)
                except (ValueError, TypeError, AttributeError, KeyError) as e:
                    status, obj = 400, {"detail": "bad admin request: %s: %s" % (type(e).__name__, e)}
            self._send(status, obj)
            return self._log(method, status)

        if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            self._send(404, {"detail": "Not Found"})
            return self._log(method, 404)

        spec = state.spec
        template, params = spec.route(path)
        if template is None:
            # FastAPI's redirect_slashes: the other form of a documented path
            other = path[:-1] if path.endswith("/") else path + "/"
            if spec.route(other)[0] is not None:
                location = other + ("?" + url.query if url.query else "")
                entry = {"method": method, "path": path, "query": query, "body": body,
                         "status": None, "redirect": location}
                return self._answer(entry, 307, raw=b"", headers=[("Location", location)])
            key = "%s %s" % (method, path[len(API_PREFIX):])
        else:
            params = {k: unquote(v) for k, v in params.items()}
            params = {"id": next(iter(params.values()))} if params else {}
            key = "%s %s" % (method, endpoint_key(template))
        op = spec.operation(method, template) if template else None

        with state.lock:
            state.counts[key] = state.counts.get(key, 0) + 1
            fault = state.pick_fault(key, query) if params is not None else None
        entry = {"method": method, "path": path, "query": query, "body": body, "status": None,
                 "t": time.time(),  # when it came (the guards' timing tests)
                 "headers": {h: self.headers.get(h) for h in
                             ("authorization", "user-agent", "content-type")}}
        if fault:
            entry["fault"] = fault["kind"]
        kind = fault["kind"] if fault else None

        # faults that replace the answer entirely
        if kind in ("500", "503", "429"):
            headers = []
            retry = fault["retry_after"]
            if kind == "429" and retry is None:
                retry = 1
            if retry is not None:
                headers.append(("Retry-After", str(retry)))
            text = {"500": "Internal Server Error", "503": "Service Unavailable",
                    "429": "Too Many Requests"}[kind]
            return self._answer(entry, int(kind), {"detail": text + " (injected fault)"}, headers=headers)
        if kind == "reset":
            return self._answer_reset(entry)
        if kind == "slow":
            state.hold(fault["delay"])

        if params is None or (op is not None and key not in IMPLEMENTED):
            return self._answer(entry, 404, {"detail": "Not Found"})
        if op is None:
            return self._answer(entry, 405, {"detail": "Method Not Allowed"})
        expected = "Bearer %s" % state.key
        if state.key and self.headers.get("Authorization") != expected:
            detail = "Not authenticated" if not self.headers.get("Authorization") else "Invalid API key"
            return self._answer(entry, 401, {"detail": detail})

        problems, unknown = op.check_query(query)
        problems = state.waive(problems)
        if unknown and state.check:
            return self._check_failed(entry, ["query parameter %r is not documented for %s %s"
                                              % (n, method, template) for n in unknown])
        if problems:
            return self._answer(entry, 422, openapi_check.error_response(problems))

        with state.lock:
            try:
                state.purge()
                status, obj = self._call(state, key, op, query, body, body_error, params)
            except Exception:           # a bug here must not look like a network fault
                self.server.log(traceback.format_exc().rstrip())
                status, obj = 500, {"detail": "fake API internal error (see its stderr)"}
            slow = dict(state.slow_create) if key == "POST /pods" and status == 200 else None

        if status == 200 and key == "DELETE /pods/{id}" and state.delete_204:
            status, obj = 204, None
        if state.check:
            bad = state.waive(op.check_response(status, obj))
            if bad:
                return self._check_failed(entry, bad)
        if slow and slow["secs"] > 0:       # the pod exists already; the answer is late
            state.hold(slow["secs"])
        if kind == "drop_post" or (slow and slow["lose"]):   # the answer is lost
            return self._answer_reset(entry, status)
        if kind == "badjson":
            good = b"" if status == 204 else json.dumps(obj).encode()
            return self._answer(entry, 200, raw=good[:max(1, len(good) // 2)] or b"{")
        return self._answer(entry, status, obj)

    def _check_failed(self, entry, problems):
        """The loud failure of the self-check: 500 and one stderr line each."""
        for p in problems:
            self.server.log("fake API check: %s %s: %s" % (entry["method"], entry["path"], p))
        entry["check"] = problems
        return self._answer(entry, 500, {"detail": "fake API check failed (see its stderr): "
                                         + "; ".join(problems[:5])})

    @staticmethod
    def _call(state, key, op, query, body, body_error, params):
        if key.split(" ")[1].startswith("/ssh_keys"):
            return ssh_keys_call(state, key, query, body, body_error, params)
        answer = disk_call(state, key, op, query, body, body_error, params)
        if answer is not None:
            return answer
        if key == "GET /availability/gpus":
            return state.api_availability(state.gpus, query)
        if key == "GET /availability/multi-node":
            return state.api_availability(state.multinode, query)
        if key == "GET /availability/gpu-summary":
            return 200, state.summary()
        if key == "GET /pods":
            return state.api_pods_list(query)
        if key == "GET /pods/status":
            return state.api_pods_status(query)
        if key == "GET /pods/history":
            return state.api_history(query)
        if key == "GET /pods/{id}":
            return state.api_pod_get(params["id"])
        if key == "GET /pods/{id}/log":
            return state.api_pod_log(params["id"], query)
        if key == "GET /billing/wallet":
            return state.api_wallet(query)
        if key == "POST /pods":
            return state.api_create(op, body, body_error)
        if key == "DELETE /pods/{id}":
            status = state.terminate(params["id"])
            if status:
                return 200, {"status": status}
            return 404, {"detail": "Pod not found"}
        return 404, {"detail": "Not Found"}

    def _record(self, entry, status):
        entry["status"] = status
        with self.server.state.lock:
            self.server.state.requests.append(entry)
        self._log(entry["method"], status if status is not None else "RESET")

    def _answer(self, entry, status, obj=None, raw=None, headers=()):
        self._record(entry, status)
        self._send(status, obj, raw=raw, headers=headers)

    def _answer_reset(self, entry, status=None):
        # the log shows the status the request would have had, if any
        entry["status"] = None
        with self.server.state.lock:
            self.server.state.requests.append(entry)
        self._log(entry["method"], "RESET" if status is None else "%s->RESET" % status)
        self._reset()

    def _log(self, method, status):
        self.server.log("%s %s %s" % (method, self.path, status))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Do not wait for handler threads on exit: an idle keep-alive client
    # would hold SIGTERM up for the whole Handler.timeout.
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, state, ssl_context):
        self.state = state
        self.ssl_context = ssl_context
        self._log_lock = threading.Lock()
        super().__init__(addr, Handler)

    def log(self, line):
        with self._log_lock:
            try:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def handle_error(self, request, client_address):
        # One line, not a traceback: resets, failed handshakes and clients
        # that vanish are routine in these tests.
        exc = sys.exc_info()[1]
        self.log("connection from %s:%s ended: %s: %s" % (
            client_address[0], client_address[1], type(exc).__name__, exc))


def parse_args(argv=None):
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="Fake Prime Intellect API for primefs tests.")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port (printed on stdout)")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="private key for --tls-cert")
    ap.add_argument("--key", default="test-key", help="the API key expected as 'Bearer KEY' ('' = no auth)")
    ap.add_argument("--fixtures", default=str(here / "fixtures"))
    ap.add_argument("--offers", type=int, default=300, help="generated /gpus offers (5 nasty ones from 10 up)")
    ap.add_argument("--pods", type=int, default=0, help="generated extra pods gen-0001...")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ssh", help="USER@HOST:PORT given as sshConnection to created pods and 'demo'")
    ap.add_argument("--ssh-node", action="append", default=[],
                    help="USER@HOST:PORT of node 1, 2, ... of multi-node pods (repeat; "
                         "default: --ssh's for every node)")
    ap.add_argument("--pending-secs", type=float, default=2.0)
    ap.add_argument("--install-secs", type=float, default=3.0)
    ap.add_argument("--balance", type=float, default=100.0)
    ap.add_argument("--delete-204", action="store_true", help="DELETE answers 204 with no body")
    ap.add_argument("--provisioning-secs", type=float, default=0.0,
                    help="a created pod is PROVISIONING this long, then PENDING")
    ap.add_argument("--omit-total-count", action="store_true",
                    help="GET /pods/ answers without total_count (the description "
                         "makes it optional)")
    ap.add_argument("--dataset", choices=("classic", "full"), default="classic",
                    help="full: add pods in every status, billing rows, ... (see add_full_dataset)")
    ap.add_argument("--list-lag", type=float, default=0.0,
                    help="new pods are listed this long after their create; deleted ones "
                         "are DELETING this long (also /_admin/lag)")
    ap.add_argument("--check-responses", dest="check_responses", action="store_true",
                    default=os.environ.get("FAKE_API_CHECK", "1") != "0",
                    help="check every answer against the OpenAPI description (default; "
                         "FAKE_API_CHECK=0 turns it off)")
    ap.add_argument("--no-check-responses", dest="check_responses", action="store_false")
    ap.add_argument("--ssh-pubkey", action="append",
                    help="a public key file registered with the account (the first primary)")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    state = State(args)
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server = Server((args.bind, args.port), state, ctx)

    # SIGTERM (meson's timeout, the tests' teardown) -> SystemExit in the
    # main thread, which leaves serve_forever through the finally below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(server.server_address[1], flush=True)
    server.log("fake API listening on %s://%s:%d" % (
        "https" if ctx else "http", args.bind, server.server_address[1]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
