"""A real systemd, booted as PID 1 of a systemd-nspawn container.

The root file system is a minimal Debian built once with mmdebstrap and
cached as build/container/rootfs-<hash>.tar.zst (the hash covers what goes
into it, so a changed package list builds a new one); each container
unpacks it into a fresh directory (about two seconds), boots it in about
one, and is always stopped and its cgroups removed, also when a test fails.
The recipe and its pitfalls: ../../../shared/notes/real-systemd.md.

Processes inside are started with nsenter into all of the container's
namespaces but the network one, which nspawn shares with the host here, so
an agent inside reaches a collector on the host's 127.0.0.1.
"""
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / "build" / "container"

# What the agent (an ASan build) needs to run inside, and systemd itself.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "libcurl4", "libyaml-0-2",
            "libjansson4", "libsqlite3-0", "zlib1g", "libasan8", "libubsan1"]
MMDEBSTRAP_ARGS = [
    "--variant=minbase",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    # no getty noise on the console; tests bring their own apt sources
    '--customize-hook=chroot "$1" systemctl mask getty@.service console-getty.service'
    ' systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer'
    ' e2scrub_all.timer fstrim.timer',
    '--customize-hook=rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*',
]


def unavailable_reason():
    """Why a container cannot be booted here, or None."""
    if os.geteuid() != 0:
        return "booting a systemd container needs root"
    for tool in ("mmdebstrap", "systemd-nspawn", "unshare", "nsenter", "zstd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deps installs it)"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare --mount does not work here: {probe.stderr.strip()}"
    for hierarchy in ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"):
        if not os.path.isdir(hierarchy):
            return f"no {hierarchy} cgroup hierarchy"
    return None


def rootfs_tarball():
    """The cached root file system, built on first use (about a minute)."""
    key = hashlib.sha256(repr((PACKAGES, MMDEBSTRAP_ARGS)).encode()).hexdigest()[:12]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / f"rootfs-{key}.tar.zst"
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            partial = tarball.with_suffix(".partial.tar.zst")
            log = CACHE_DIR / "mmdebstrap.log"
            with open(log, "w") as fp:
                rc = subprocess.run(
                    ["mmdebstrap", *MMDEBSTRAP_ARGS, "--include=" + ",".join(PACKAGES),
                     "bookworm", str(partial)],
                    stdout=fp, stderr=subprocess.STDOUT, timeout=900).returncode
            if rc != 0:
                raise RuntimeError(f"mmdebstrap failed ({rc}), see {log}:\n"
                                   + log.read_text()[-3000:])
            partial.rename(tarball)
    return tarball


class Container:
    """One booted container; use as a context manager."""

    def __init__(self, workdir, name="tocsintest"):
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.name = f"{name}{os.getpid()}"
        self.cgroup = f"tocsin-test-{os.getpid()}-{id(self) & 0xffff:x}"
        self.log = self.workdir / "nspawn.log"
        self.proc = None
        self.leader = None  # the container's PID 1 as a host PID

    # --- set-up -----------------------------------------------------------
    def unpack(self):
        self.root.mkdir(parents=True)
        subprocess.run(["tar", "--zstd", "-xpf", str(rootfs_tarball()), "-C", str(self.root)],
                       check=True)
        return self

    def path(self, inside):
        """The host path of a path inside the container."""
        return self.root / str(inside).lstrip("/")

    def write(self, inside, text, mode=0o644):
        p = self.path(inside)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        p.chmod(mode)
        return p

    def copy_in(self, host_path, inside, mode=0o755):
        p = self.path(inside)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(host_path, p)
        p.chmod(mode)
        return p

    # --- boot and stop ------------------------------------------------------
    def _cgroup_dirs(self):
        return [Path("/sys/fs/cgroup/systemd") / self.cgroup,
                Path("/sys/fs/cgroup/unified") / self.cgroup]

    def _enter_cgroup(self):
        # runs in the child between fork and exec: nspawn gets a cgroup of
        # its own, so that parallel containers do not collide
        for d in self._cgroup_dirs():
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def boot(self, timeout=60):
        for d in self._cgroup_dirs():
            d.mkdir()
        self.log_fp = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && '
             'exec systemd-nspawn -D "$0" -M "$1" --boot --register=no --keep-unit '
             '--console=read-only', str(self.root), self.name],
            stdout=self.log_fp, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=self._enter_cgroup)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited:\n{self.log.read_text()}")
            if self.leader is None:
                self.leader = self._find_leader()
            if self.leader is not None:
                state = self.run("systemctl", "is-system-running", check=False,
                                 timeout=10).stdout.strip()
                if state in ("running", "degraded"):
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"the container did not boot in {timeout}s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def _find_leader(self):
        """The container's PID 1: the systemd among nspawn's descendants."""
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                try:
                    comm = Path(f"/proc/{child}/comm").read_text().strip()
                except OSError:
                    continue
                if comm == "systemd":
                    return child
                todo.append(child)
        return None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log_fp.close()
        self.proc = None
        for d in self._cgroup_dirs():
            if d.exists():
                for sub in sorted((p for p in d.rglob("*") if p.is_dir()),
                                  key=lambda p: len(p.parts), reverse=True):
                    sub.rmdir()
                d.rmdir()
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- inside -------------------------------------------------------------
    def nsenter(self):
        # all namespaces but the network: nspawn shares the host's anyway,
        # and being explicit keeps 127.0.0.1 the host's loopback
        return ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-p", "-C",
                "--root", "--wd"]

    def run(self, *cmd, check=True, timeout=120, env=None):
        """Run cmd inside and wait; returns the CompletedProcess."""
        proc = subprocess.run([*self.nsenter(), *cmd], capture_output=True, text=True,
                              timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}) in the "
                                 f"container:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def spawn(self, *cmd, stdout=None, env=None):
        """Start cmd inside; returns (nsenter's Popen, the host PID of cmd)."""
        proc = subprocess.Popen([*self.nsenter(), *cmd], stdout=stdout,
                                stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            except OSError:
                kids = []
            if kids:
                return proc, int(kids[0])
            if proc.poll() is not None:
                return proc, None
            time.sleep(0.01)
        return proc, None

    def systemctl(self, *args, check=True):
        return self.run("systemctl", *args, check=check)

