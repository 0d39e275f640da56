"""A real OpenSSH sshd to play a pod in tests, and the keys to reach it.

    sshd = Sshd(tmpdir, authorized_keys=[pub_text_or_path], host_key_type="ed25519",
                bashrc="",  # lines for ~/.bashrc (after a cd to this HOME)
                sftp_in_home=False)  # SFTP's "." is HOME too, as on a pod
    sshd.conn            # "root@127.0.0.1 -p PORT", as the API writes sshConnection
    sshd.home            # the pod user's HOME, where its commands start
    sshd.kill()          # SIGKILL sshd and every session child (a pod that dies)
    sshd.restart()       # same port and host key; restart(new_host_key=True) for a changed key
    sshd.freeze()        # SIGSTOP sshd and its sessions (a host that hangs); thaw() resumes
    sshd.log_text()      # what sshd logged (LogLevel VERBOSE)
    sshd.stop()
    priv, pub = make_key(dir, "ed25519")   # or "rsa"

sshd runs in the foreground (-D) from its own config, with absolute paths, on
127.0.0.1 and a free port (see TESTING.md: StrictModes no for keys under
/tmp, UsePAM no, root by key only). It needs root, as a pod's sshd does.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_key(directory, key_type="ed25519", name=None):
    """A passphrase-less key pair; returns (private key path, public key text)."""
    path = Path(directory) / (name or "id_" + key_type)
    if not path.exists():
        args = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "primefs-test", "-f", str(path)]
        if key_type == "rsa":
            args += ["-b", "2048"]
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL)
    return str(path), Path(str(path) + ".pub").read_text().strip()


def _children():
    """pid -> list of child pids, from /proc."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def silent_listener():
    """A TCP port that accepts connections (the kernel does) but never says a
    word: an sshd that hangs. Returns the socket; its port is getsockname()[1]."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


class Sshd:
    def __init__(self, tmpdir, authorized_keys=(), host_key_type="ed25519",
                 port=None, extra_config=(), bashrc="", sftp_in_home=False):
        if os.geteuid() != 0:
            raise RuntimeError("sshd needs root")
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host_key_type = host_key_type
        self.host_key = self.dir / ("ssh_host_%s_key" % host_key_type)
        self._make_host_key()
        self.authorized_keys = self.dir / "authorized_keys"
        lines = []
        for k in authorized_keys:
            k = str(k)
            lines.append(Path(k).read_text().strip() if os.path.exists(k) else k.strip())
        self.authorized_keys.write_text("".join(l + "\n" for l in lines))
        self.port = port or free_port()
        self.pid_file = self.dir / "sshd.pid"
        self.log_path = self.dir / "sshd.log"
        self.config = self.dir / "sshd_config"
        # The pod user's home: the sessions' shell reads its startup files
        # from here, not from the real root's (whose ~/.bashrc on a
        # developer's machine may print, e.g. pyenv's rehash warnings,
        # into every command's output). sshd cds to the passwd home (the
        # real /root) before it starts the shell; on a pod that is HOME, so
        # the ~/.bashrc here cds there, as sshd would: a command's relative
        # paths land in this home, not in the host's /root (bash only, the
        # login shell of root here). bashrc: more lines for it (the bench
        # gives it a pod's slow one).
        self.home = self.dir / "home"
        self.home.mkdir(exist_ok=True)
        (self.home / ".bashrc").write_text('cd "$HOME"\n' + bashrc)
        self.config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UseDNS no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            "MaxStartups 100",
            # sftp_in_home: SFTP starts in this home too, as on a pod
            # (where both are the passwd home), not in the host's /root.
            "Subsystem sftp internal-sftp" + (f" -d {self.home}" if sftp_in_home else ""),
            f"SetEnv HOME={self.home}",
            *extra_config,
        ]) + "\n")
        self.proc = None
        self.start()

    @property
    def conn(self):
        return f"root@127.0.0.1 -p {self.port}"

    def _make_host_key(self):
        for p in (self.host_key, Path(str(self.host_key) + ".pub")):
            if p.exists():
                p.unlink()
        args = ["ssh-keygen", "-q", "-t", self.host_key_type, "-N", "", "-f", str(self.host_key)]
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL)

    def host_key_pub(self):
        return Path(str(self.host_key) + ".pub").read_text().strip()

    def start(self):
        subprocess.run(["install", "-d", "-m0755", "/run/sshd"], check=True)
        if self.pid_file.exists():
            self.pid_file.unlink()
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config), "-E", str(self.log_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        # sshd writes its pid file once it listens; probing the port instead
        # would add a connection to its log.
        deadline = time.time() + 10
        while True:
            try:
                if int(self.pid_file.read_text()) == self.proc.pid:
                    return
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("sshd did not start:\n" + self.log_text()[-3000:])
            time.sleep(0.01)

    def _signal_all(self, sig):
        if not self.proc:
            return
        # Session children run in sessions of their own (sshd calls setsid),
        # so a process group would miss them: walk the tree instead, and
        # collect it before the parent dies and its children are reparented.
        pids = [self.proc.pid] + descendants(self.proc.pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        """SIGKILL sshd and all its session processes (and their commands)."""
        self._signal_all(signal.SIGKILL)
        if self.proc:
            self.proc.wait()
            self.proc = None

    def freeze(self):
        """SIGSTOP the listener, every session process and their commands:
        connections stay open and the kernel still acknowledges packets,
        but nothing answers."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self):
        self._signal_all(signal.SIGCONT)

    def restart(self, new_host_key=False):
        """Same port and config; with new_host_key, a freshly made host key."""
        self.kill()
        if new_host_key:
            self._make_host_key()
        self.start()

    def stop(self):
        if not self.proc:
            return
        self._signal_all(signal.SIGTERM)
        self._signal_all(signal.SIGCONT)  # a frozen one would not die
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
