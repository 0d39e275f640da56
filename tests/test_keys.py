"""SSH keys: ssh_keys/ shows the account's keys (cp registers one, rm
deletes one, ln -sfn makes one primary), and mkdir sends the sshKeyId of
the registered key that primefs uses for jobs, or refuses with EACCES (and
sends nothing) when that key is not registered."""

import errno
import os
import subprocess
from pathlib import Path

import pytest

from conftest import err_of
from sshd import make_key

TEMPLATE = "max_pods = 100\ngpu_type = H100_80GB\nimage = ubuntu_22_cuda_12\n"


def posts(api, path="/pods"):
    return [r for r in api.requests()
            if r["method"] == "POST" and r["path"].rstrip("/").endswith(path)]


def account_keys(api):
    return api.get("/ssh_keys/")["data"]


def new_key(d):
    d.mkdir(parents=True, exist_ok=True)
    return make_key(d, "ed25519")


def mount_with_key(make_api, make_mount, tmp_path, register=True, comment=None):
    api = make_api()
    priv, pub = new_key(tmp_path / "keys")
    if register:
        text = pub if comment is None else " ".join(pub.split()[:2] + [comment])
        api.admin("ssh_key", {"name": "laptop", "publicKey": text})
    m = make_mount(api, options=(f"ssh_key={priv}", f"known_hosts={tmp_path / 'kh'}"),
                   register_key=False)
    m.write("config", TEMPLATE)
    return api, m, priv, pub


def test_mkdir_sends_the_registered_key_id(make_api, make_mount, tmp_path):
    # Registered under another comment: the key blob is what is compared.
    api, m, priv, pub = mount_with_key(make_api, make_mount, tmp_path,
                                       comment="someone@elsewhere")
    other, _ = new_key(tmp_path / "other")
    api.admin("ssh_key", {"name": "other", "publicKey": Path(other + ".pub").read_text(),
                          "primary": True})
    want = [k["id"] for k in account_keys(api) if k["name"] == "laptop"]
    os.mkdir(m.p("pods", "withkey"))
    sent = posts(api)
    assert len(sent) == 1
    assert sent[0]["body"]["pod"]["sshKeyId"] == want[0]
    assert sent[0]["status"] == 200


def test_mkdir_refused_when_the_key_is_not_registered(make_api, make_mount, tmp_path):
    api, m, priv, pub = mount_with_key(make_api, make_mount, tmp_path, register=False)
    api.reset()
    assert err_of(lambda: os.mkdir(m.p("pods", "nokey"))) == errno.EACCES
    assert posts(api) == []                       # nothing rented
    assert not os.path.exists(m.p("pods", "nokey"))
    log = m.log()
    assert f"cp {priv}.pub {m.path}/ssh_keys/id_ed25519" in log, log[-2000:]
    # Registering it (as the log says) makes the same mkdir work.
    api.admin("ssh_key", {"name": "laptop", "publicKey": pub})
    m.write("ctl", "refresh\n")
    os.mkdir(m.p("pods", "nokey"))
    assert len(posts(api)) == 1 and posts(api)[0]["body"]["pod"]["sshKeyId"]


def test_fake_refuses_an_unknown_ssh_key_id(api):
    import json
    import urllib.error
    import urllib.request
    body = {"pod": {"name": "x", "cloudId": "c", "gpuType": "H100_80GB", "socket": "PCIe",
                    "gpuCount": 1, "sshKeyId": "no-such-key"},
            "provider": {"type": "runpod"}}
    req = urllib.request.Request(api.base + "/api/v1/pods/", data=json.dumps(body).encode(),
                                 method="POST")
    req.add_header("Authorization", "Bearer test-key")
    req.add_header("Content-Type", "application/json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=api.ctx, timeout=10)
    assert e.value.code == 404


def test_ssh_keys_cp_ln_rm(make_api, make_mount, tmp_path):
    api, m, priv, pub = mount_with_key(make_api, make_mount, tmp_path)
    keys = m.p("ssh_keys")
    assert sorted(os.listdir(keys)) == ["laptop", "primary"]
    assert os.readlink(os.path.join(keys, "primary")) == "laptop"
    assert m.read("ssh_keys", "laptop") == pub + "\n"

    # cp registers a new key: one POST, at close, with the file's name
    other, other_pub = new_key(tmp_path / "other")
    api.reset()
    subprocess.run(["cp", other + ".pub", os.path.join(keys, "desktop")], check=True)
    sent = posts(api, "/ssh_keys")
    assert len(sent) == 1 and sent[0]["status"] == 200
    assert sent[0]["body"] == {"name": "desktop", "publicKey": other_pub}
    assert m.read("ssh_keys", "desktop") == other_pub + "\n"   # shows at once
    assert sorted(os.listdir(keys)) == ["desktop", "laptop", "primary"]
    assert any(k["name"] == "desktop" and not k["isPrimary"] for k in account_keys(api))

    # ln -sfn makes it primary (a temporary link renamed over primary)
    subprocess.run(["ln", "-sfn", "desktop", os.path.join(keys, "primary")], check=True)
    assert os.readlink(os.path.join(keys, "primary")) == "desktop"
    prim = [k["name"] for k in account_keys(api) if k["isPrimary"]]
    assert prim == ["desktop"]
    patches = [r for r in api.requests() if r["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["body"] == {"isPrimary": True}
    assert sorted(os.listdir(keys)) == ["desktop", "laptop", "primary"]

    # rm deletes one
    subprocess.run(["rm", os.path.join(keys, "laptop")], check=True)
    assert [k["name"] for k in account_keys(api)] == ["desktop"]
    assert not os.path.exists(os.path.join(keys, "laptop"))
    assert sorted(os.listdir(keys)) == ["desktop", "primary"]
    assert err_of(lambda: os.unlink(os.path.join(keys, "primary"))) == errno.EPERM


def test_ssh_keys_bad_text_is_einval(make_api, make_mount, tmp_path):
    api, m, priv, pub = mount_with_key(make_api, make_mount, tmp_path)
    api.reset()
    r = subprocess.run(["cp", priv, m.p("ssh_keys", "oops")], capture_output=True, text=True)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert posts(api, "/ssh_keys") == []
    assert "that is a private key" in m.log()
    r = subprocess.run(["bash", "-c", f"echo 'ssh-ed25519 notbase64!' > {m.p('ssh_keys', 'x')}"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert posts(api, "/ssh_keys") == []
    assert sorted(os.listdir(m.p("ssh_keys"))) == ["laptop", "primary"]
    # a key the account has already: the API's refusal, EINVAL
    r = subprocess.run(["cp", priv + ".pub", m.p("ssh_keys", "again")], capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "already exists" in m.log()


@pytest.fixture
def agent(tmp_path):
    """A real ssh-agent holding a fresh key: (SSH_AUTH_SOCK, public key)."""
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            import time
            time.sleep(0.02)
        priv, pub = new_key(tmp_path / "agentkey")
        os.unlink(priv + ".pub")          # only the agent has it
        subprocess.run(["ssh-add", "-q", priv], check=True,
                       env=dict(os.environ, SSH_AUTH_SOCK=sock))
        yield sock, pub
    finally:
        proc.terminate()
        proc.wait()


def test_mkdir_matches_the_agents_key(make_api, make_mount, tmp_path, agent):
    sock, pub = agent
    api = make_api()
    m = make_mount(api, env={"SSH_AUTH_SOCK": sock})
    m.write("config", TEMPLATE)
    # not registered: refused, and log says how to register the agent's key
    assert err_of(lambda: os.mkdir(m.p("pods", "a"))) == errno.EACCES
    assert posts(api) == []
    assert "ssh-add -L" in m.log()
    # registered (under any comment): its id is sent
    api.admin("ssh_key", {"name": "agent", "publicKey": " ".join(pub.split()[:2])})
    m.write("ctl", "refresh\n")
    os.mkdir(m.p("pods", "a"))
    want = [k["id"] for k in account_keys(api) if k["name"] == "agent"]
    assert posts(api)[-1]["body"]["pod"]["sshKeyId"] == want[0]


def test_mkdir_with_no_ssh_key_at_all(api, make_mount):
    """No agent, no key file: nothing to match; the API's default (the
    account's primary key) applies, and log says jobs cannot reach it."""
    m = make_mount(api)
    m.write("config", TEMPLATE)
    os.mkdir(m.p("pods", "bare"))
    assert "sshKeyId" not in posts(api)[-1]["body"]["pod"]
    assert "no SSH key for jobs" in m.log()


def test_mkdir_refused_when_the_key_has_no_pub(make_api, make_mount, tmp_path):
    """The key jobs use, without its .pub beside it: which registered key
    it is cannot be told; refused, and log says how to make the .pub."""
    api = make_api()
    priv, pub = new_key(tmp_path / "keys")
    os.unlink(priv + ".pub")
    api.admin("ssh_key", {"name": "laptop", "publicKey": pub})
    m = make_mount(api, options=(f"ssh_key={priv}",))
    m.write("config", TEMPLATE)
    assert err_of(lambda: os.mkdir(m.p("pods", "x"))) == errno.EACCES
    assert posts(api) == []
    assert f"ssh-keygen -y -f {priv} > {priv}.pub" in m.log()
