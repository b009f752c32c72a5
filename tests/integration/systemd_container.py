"""A real systemd booted as PID 1 of a systemd-nspawn container.

Follows /work/shared/notes/real-systemd.md: a Debian minbase root file
system with systemd and dbus, built once with mmdebstrap and cached as
build/nspawn/rootfs.tar.zst (about 25 s once, 2 s to unpack), a private
cgroup per container, boot in about a second.  A client on the host
reaches the container's system bus through
/proc/<pid>/root/run/dbus/system_bus_socket (DBUS_SYSTEM_BUS_ADDRESS).

The container is always stopped and its cgroups removed, also when the
test fails.  Only processes this module started are ever signalled.
"""
import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "nspawn" / "rootfs.tar.zst"
MIRROR = os.environ.get("TOCSIN_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def available():
    """Why a container cannot run here, or None."""
    if os.geteuid() != 0:
        return "booting systemd in a container needs root (CI runs as root)"
    for tool in ("systemd-nspawn", "mmdebstrap", "nsenter", "unshare", "zstd"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (packaging/install-deps.sh installs it)"
    return None


def rootfs_tarball():
    """The cached root file system, built on first use (under a lock, so
    two test runs do not build it at once)."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not CACHE.exists():
            tmp = CACHE.with_suffix(".tmp.tar.zst")
            log = CACHE.parent / "mmdebstrap.log"
            with open(log, "wb") as fp:
                rc = subprocess.run(
                    ["mmdebstrap", "--variant=minbase",
                     "--include=systemd,systemd-sysv,dbus",
                     "--dpkgopt=path-exclude=/usr/share/man/*",
                     "--dpkgopt=path-exclude=/usr/share/doc/*",
                     "--dpkgopt=path-exclude=/usr/share/locale/*",
                     "bookworm", str(tmp), MIRROR],
                    stdout=fp, stderr=subprocess.STDOUT, timeout=900).returncode
            assert rc == 0, f"mmdebstrap failed, see {log}"
            tmp.rename(CACHE)
    return CACHE


class SystemdContainer:
    def __init__(self, workdir, name="tocsintest"):
        self.dir = Path(workdir)
        self.root = self.dir / "root"
        self.name = name
        self.cgroup = f"tocsin-test-{os.getpid()}-{id(self)}"
        self.proc = None
        self.leader = None  # the container's PID 1, as a host pid

    def prepare(self, units=None):
        """Unpack the root file system and install unit files
        (name -> text) into /etc/systemd/system."""
        self.root.mkdir(parents=True)
        subprocess.run(["tar", "--zstd", "-xf", str(rootfs_tarball()),
                        "-C", str(self.root)], check=True)
        sysdir = self.root / "etc/systemd/system"
        for masked in ("getty@.service", "console-getty.service",
                       "systemd-networkd.service", "systemd-timesyncd.service"):
            link = sysdir / masked
            if not link.exists():
                link.symlink_to("/dev/null")
        for name, text in (units or {}).items():
            (sysdir / name).write_text(text)
        return self

    def start(self, timeout=30):
        for hier in ("systemd", "unified"):
            os.mkdir(f"/sys/fs/cgroup/{hier}/{self.cgroup}")
        log = open(self.dir / "nspawn.log", "wb")
        # the launcher moves itself into the private cgroup, then boots
        script = (f'echo $$ > /sys/fs/cgroup/systemd/{self.cgroup}/cgroup.procs && '
                  f'echo $$ > /sys/fs/cgroup/unified/{self.cgroup}/cgroup.procs && '
                  'exec unshare --mount --propagation private sh -c \''
                  'mkdir -p /run/systemd/nspawn && '
                  'mount -t tmpfs tmpfs /run/systemd/nspawn && '
                  'exec systemd-nspawn -D "$0" -M "$1" --boot --register=no '
                  '--keep-unit --console=read-only\' "$0" "$1"')
        self.proc = subprocess.Popen(["setsid", "sh", "-c", script,
                                      str(self.root), self.name],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            self.leader = self.leader or self._find_leader()
            if self.leader and self.bus_socket.exists():
                state = self.run("systemctl", "is-system-running", check=False)
                if state.stdout.strip() in ("running", "degraded"):
                    return self
            time.sleep(0.1)
        raise AssertionError(f"the container did not boot in {timeout}s:\n{self.log()}")

    def _find_leader(self):
        """The container's PID 1: the process running systemd in our cgroup."""
        try:
            procs = Path(f"/sys/fs/cgroup/unified/{self.cgroup}").rglob("cgroup.procs")
            for f in procs:
                for pid in f.read_text().split():
                    try:
                        comm = Path(f"/proc/{pid}/comm").read_text().strip()
                        nspid = Path(f"/proc/{pid}/status").read_text()
                    except OSError:
                        continue
                    if comm == "systemd" and "NSpid:\t" in nspid and \
                            nspid.split("NSpid:\t")[1].split("\n")[0].split()[-1] == "1":
                        return int(pid)
        except OSError:
            return None
        return None

    @property
    def bus_socket(self):
        return Path(f"/proc/{self.leader}/root/run/dbus/system_bus_socket")

    @property
    def bus_address(self):
        return f"unix:path={self.bus_socket}"

    def run(self, *argv, check=True, timeout=30):
        """Run a command inside the container (all its namespaces)."""
        proc = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *argv],
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"{argv}: {proc.stderr}"
        return proc

    def log(self):
        try:
            return (self.dir / "nspawn.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM to our launcher: a clean stop
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for hier in ("systemd", "unified"):
            top = Path(f"/sys/fs/cgroup/{hier}/{self.cgroup}")
            if top.exists():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()),
                                key=lambda p: len(p.parts), reverse=True):
                    d.rmdir()
                top.rmdir()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def systemd_container(tmp_path_factory, request):
    """A booted container with the units the requesting module lists in
    its CONTAINER_UNITS (name -> unit file text)."""
    why = available()
    if why:
        pytest.skip(why)
    units = getattr(request.module, "CONTAINER_UNITS", {})
    c = SystemdContainer(tmp_path_factory.mktemp("container"))
    try:
        c.prepare(units).start()
        yield c
    finally:
        c.stop()
