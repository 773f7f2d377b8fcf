"""crossdock doctor's checks, with the outside facts injected (binfmt folders, PATH, machine)."""

from __future__ import annotations

import json
from pathlib import Path

from crossdock.doctor import (
    DoctorInput,
    HostEnv,
    Status,
    check_binfmt,
    check_docker,
    check_host,
    parse_binfmt_entry,
    parse_buildx_ls,
    run_doctor,
)
from crossdock.doctor.probes import DockerFacts, probe_binfmt, probe_docker
from crossdock.platform import AMD64, ARM64
from crossdock.registry.reference import Mirrors

# Real text from this machine: /proc/sys/fs/binfmt_misc/qemu-aarch64 (binfmt-support + F flag)
# and `docker buildx ls` (buildx 0.13.1 on dockerd 20.10).
QEMU_AARCH64 = (
    "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"
    "magic 7f454c460201010000000000000000000200b700\n"
    "mask ffffffffffffff00fffffffffffffffffeffffff\n"
)
BUILDX_LS = (
    "NAME/NODE     DRIVER/ENDPOINT   STATUS    BUILDKIT       PLATFORMS\n"
    "default*      docker                                     \n"
    " \\_ default    \\_ default       running   v0.8+unknown   "
    "linux/amd64, linux/arm64, linux/386\n"
)


def binfmt_dir(tmp_path: Path, entry: str | None) -> Path:
    folder = tmp_path / "binfmt_misc"
    folder.mkdir(parents=True)
    (folder / "status").write_text("enabled\n")
    if entry is not None:
        (folder / "qemu-aarch64").write_text(entry)
    return folder


def test_parsers_read_this_machines_output() -> None:
    entry = parse_binfmt_entry("qemu-aarch64", QEMU_AARCH64)
    assert (entry.state, entry.flags, entry.fix_binary) == ("enabled", "PF", True)
    assert entry.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    (builder,) = parse_buildx_ls(BUILDX_LS)
    assert (builder.name, builder.driver, builder.current) == ("default", "docker", True)
    assert builder.platforms == ("linux/amd64", "linux/arm64", "linux/386")
    assert builder.buildkit == "v0.8+unknown"


def test_binfmt_on_off_absent_and_without_fix_binary(tmp_path: Path) -> None:
    on = check_binfmt(
        probe_binfmt(HostEnv(binfmt_dir=binfmt_dir(tmp_path / "on", QEMU_AARCH64)), "arm64"), ARM64
    )
    assert on.status is Status.OK

    off_dir = binfmt_dir(tmp_path / "off", QEMU_AARCH64.replace("enabled", "disabled", 1))
    off = check_binfmt(probe_binfmt(HostEnv(binfmt_dir=off_dir), "arm64"), ARM64)
    assert off.status is Status.WARN and off.native_avoids
    assert "exec format error" in off.summary
    assert off.fix is not None and "qemu-user-static" in off.fix

    absent = check_binfmt(
        probe_binfmt(HostEnv(binfmt_dir=binfmt_dir(tmp_path / "absent", None)), "arm64"), ARM64
    )
    assert absent.status is Status.WARN and absent.details["state"] == "absent"

    no_f = check_binfmt(parse_binfmt_entry("qemu-aarch64", QEMU_AARCH64.replace("PF", "P")), ARM64)
    assert no_f.status is Status.WARN and "F (fix-binary)" in no_f.summary

    unmounted = check_binfmt(probe_binfmt(HostEnv(binfmt_dir=tmp_path / "nothing"), "arm64"), ARM64)
    assert unmounted.status is Status.WARN and "mount -t binfmt_misc" in (unmounted.fix or "")


def test_host_architecture_decides_what_is_emulated() -> None:
    (intel,) = check_host(HostEnv(machine="x86_64"), [ARM64, AMD64])
    assert intel.details["emulated"] == ["linux/arm64"] and intel.native_avoids
    # Apple Silicon (or Graviton): amd64 is the slow one.
    (apple,) = check_host(HostEnv(machine="arm64"), [ARM64, AMD64])
    assert apple.details["emulated"] == ["linux/amd64"]
    (native,) = check_host(HostEnv(machine="aarch64"), [ARM64])
    assert native.status is Status.OK


def test_no_docker_on_path_is_a_warning_the_native_backend_avoids(tmp_path: Path) -> None:
    env = HostEnv(
        path=str(tmp_path), binfmt_dir=binfmt_dir(tmp_path, QEMU_AARCH64), machine="x86_64"
    )
    facts = probe_docker(env)
    assert facts.path is None
    report = run_doctor(DoctorInput((ARM64, AMD64), {}, Mirrors({}), {}, check_network=False), env)
    (docker,) = report.by_check("docker")
    assert docker.status is Status.WARN and docker.native_avoids
    assert report.by_check("buildx") == []
    assert report.ok  # crossdock itself builds without docker
    data = json.loads(json.dumps(report.to_json()))
    assert data["ok"] is True
    assert {f["check"] for f in data["findings"]} >= {"host", "docker", "binfmt", "verify"}


def test_builder_missing_a_platform_and_the_docker_driver_note() -> None:
    builders = tuple(parse_buildx_ls(BUILDX_LS.replace(", linux/arm64", "")))
    facts = DockerFacts("/usr/bin/docker", "28.2.2", "20.10.24", None, "buildx 0.13.1", builders)
    findings = check_docker(facts, [ARM64, AMD64])
    missing = [f for f in findings if f.check == "builders" and f.status is Status.WARN]
    assert missing and "linux/arm64" in missing[0].summary
    assert any("cannot export a multi-platform result" in f.summary for f in findings)


def test_daemon_down_and_buildx_missing() -> None:
    facts = DockerFacts("/usr/bin/docker", "28.2.2", None, "Cannot connect to the Docker daemon")
    findings = {f.check: f for f in check_docker(facts, [ARM64])}
    assert findings["docker"].status is Status.WARN
    assert "Cannot connect" in findings["docker"].summary
    assert findings["buildx"].status is Status.WARN
