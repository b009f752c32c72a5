"""The Debian packages: built from the release binaries, with what they must hold.

Installing them into a real systemd (and running the agent as a service)
needs a container; here each package is unpacked with dpkg-deb and its
binary run, its maintainer scripts are syntax-checked, and its metadata
read back with dpkg-deb itself.
"""
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    if not (ROOT / "bin" / "tocsin-agent").exists():
        pytest.skip("the release binaries are not built (make all)")
    out = tmp_path_factory.mktemp("deb")
    run = subprocess.run([str(ROOT / "packaging" / "build-debs.sh"), str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return {p.name.split("_")[0]: p for p in out.glob("*.deb")}


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_three_packages_with_versions_and_library_depends(debs):
    assert set(debs) == {"tocsin-agent", "tocsin-server", "tocsin-cli"}
    version = next(line.split(":=")[1].strip() for line in
                   (ROOT / "Makefile").read_text().splitlines()
                   if line.startswith("VERSION :="))
    for name, deb in debs.items():
        assert field(deb, "Package") == name
        assert field(deb, "Version") == version
    assert "libcurl4" in field(debs["tocsin-agent"], "Depends")
    assert "libmicrohttpd12" in field(debs["tocsin-server"], "Depends")
    assert "libsodium23" in field(debs["tocsin-server"], "Depends")
    assert "tzdata" in field(debs["tocsin-server"], "Depends")


def test_examples_ship_with_what_they_refer_to(debs, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(debs["tocsin-server"]), str(tmp_path)], check=True)
    examples = tmp_path / "usr/share/doc/tocsin-server/examples/server.d"
    shipped = {p.name for p in examples.iterdir()}
    assert shipped == {p.name for p in (ROOT / "conf.d/server.d").iterdir() if p.is_file()}
    traps = {p.name for p in (tmp_path / "usr/share/doc/tocsin-server/examples/traps").iterdir()}
    assert traps == {p.name for p in (ROOT / "conf.d/traps").glob("*.yaml")}
    assert (tmp_path / "etc/tocsin/traps").is_dir()


@pytest.mark.parametrize("name,binary,config", [
    ("tocsin-agent", "usr/sbin/tocsin-agent", "etc/tocsin/agent.yaml"),
    ("tocsin-server", "usr/sbin/tocsin-server", "etc/tocsin/server.yaml"),
])
def test_daemon_package_contents_and_scripts(debs, tmp_path, name, binary, config):
    deb = debs[name]
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    ctl = tmp_path / "DEBIAN"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(ctl)], check=True)

    version = subprocess.run([str(tmp_path / binary), "--version"], capture_output=True,
                             text=True, timeout=10)
    assert version.returncode == 0 and name in version.stdout
    # stripped: no debug sections in what is shipped
    sections = subprocess.run(["readelf", "-S", str(tmp_path / binary)],
                              capture_output=True, text=True, check=True).stdout
    assert ".debug_info" not in sections

    cfg = tmp_path / config
    assert cfg.exists()
    assert oct(cfg.stat().st_mode & 0o777) == "0o640"  # it holds secrets
    assert (ctl / "conffiles").read_text().split() == ["/" + config]
    sysusers = (tmp_path / "usr/lib/sysusers.d" / f"{name}.conf").read_text()
    assert sysusers.startswith("u ")
    unit_path = ROOT / "packaging" / f"{name}.service"
    if unit_path.exists():
        # the user's home is the unit's StateDirectory=
        state = next(line.split("=", 1)[1] for line in unit_path.read_text().splitlines()
                     if line.startswith("StateDirectory="))
        assert shlex.split(sysusers.splitlines()[0])[4] == f"/var/lib/{state}"
    for script in ("postinst", "prerm", "postrm"):
        path = ctl / script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        assert subprocess.run(["sh", "-n", str(path)]).returncode == 0, script
    unit = ROOT / "packaging" / f"{name}.service"
    if unit.exists():
        assert (tmp_path / "lib/systemd/system" / f"{name}.service").read_text() == unit.read_text()


def test_agent_ships_its_deliverer_and_only_that_links_libcurl(debs, tmp_path):
    """The deliverer is where the agent looks for it (DELIVERER_LIBEXEC_DIR),
    stripped and runnable; the long-running agent links no libcurl and no
    TLS library, the deliverer does, and Depends covers both."""
    subprocess.run(["dpkg-deb", "-x", str(debs["tocsin-agent"]), str(tmp_path)], check=True)
    deliverer = tmp_path / "usr/libexec/tocsin/tocsin-agent-deliver"
    assert deliverer.exists() and deliverer.stat().st_mode & 0o111
    assert '#define DELIVERER_LIBEXEC_DIR "/usr/libexec/tocsin"' in \
        (ROOT / "agent" / "deliverer.h").read_text()
    sections = subprocess.run(["readelf", "-S", str(deliverer)],
                              capture_output=True, text=True, check=True).stdout
    assert ".debug_info" not in sections

    def needed(path):
        out = subprocess.run(["readelf", "-d", str(path)], capture_output=True,
                             text=True, check=True).stdout
        return {line.split("[")[1].split("]")[0] for line in out.splitlines()
                if "(NEEDED)" in line}

    agent_libs = needed(tmp_path / "usr/sbin/tocsin-agent")
    assert not any(lib.startswith(("libcurl", "libssl", "libcrypto", "libgnutls"))
                   for lib in agent_libs), agent_libs
    assert "libcurl.so.4" in needed(deliverer)
    assert "libcurl4" in field(debs["tocsin-agent"], "Depends")
    # run by hand, it says what it is for and refuses
    run = subprocess.run([str(deliverer)], capture_output=True, text=True, timeout=10)
    assert run.returncode == 2 and "is started by tocsin-agent" in run.stderr
    # the unit lets the agent start it: nothing restricts what it may execute
    unit = (ROOT / "packaging" / "tocsin-agent.service").read_text()
    assert "NoExecPaths" not in unit and "ExecPaths=" not in unit
    assert "tocsin-agent-deliver" in unit


def test_agent_joins_the_groups_it_needs_to_read_logs(debs, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(debs["tocsin-agent"]), str(tmp_path)], check=True)
    sysusers = (tmp_path / "usr/lib/sysusers.d/tocsin-agent.conf").read_text()
    assert "m tocsin-agent systemd-journal" in sysusers
    assert "m tocsin-agent adm" in sysusers
