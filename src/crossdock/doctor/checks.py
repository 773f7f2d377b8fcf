"""``crossdock doctor``: diagnose the seed's Common Issues before they happen.

Each check turns facts (from ``probes``, injected) into findings with the fix. The seed's issues:

* "exec format error" building arm64 on an amd64 host: no QEMU registration (binfmt) for the
  target's architecture, or one without the F flag (containers cannot find the interpreter);
* "image with reference was found but does not match the specified platform": the base image
  has no variant for the platform, or a build ran without ``--platform``;
* wrong architecture after build: ``docker inspect`` shows the label; ``crossdock verify`` reads
  the binaries;
* slow builds on Apple Silicon or Intel: every non-native platform runs under emulation.

The native backend needs none of docker, buildx and QEMU: findings about them say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from crossdock.doctor.probes import (
    BinfmtEntry,
    DockerFacts,
    HostEnv,
    host_architecture,
    probe_binfmt,
    probe_docker,
)
from crossdock.doctor.report import DoctorFinding, DoctorReport, Status
from crossdock.errors import CrossdockError
from crossdock.image.manifest import Index
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.credentials import find_credentials
from crossdock.registry.reference import Mirrors, Reference, api_host, is_loopback_registry
from crossdock.sources.registry import Registries
from crossdock.tls import system_ssl_context

__all__ = ["DoctorInput", "check_binfmt", "check_docker", "check_host", "run_doctor"]

_QEMU_FIX = (
    "register QEMU for {arch} with the fix-binary flag: `docker run --rm --privileged "
    "multiarch/qemu-user-static --reset -p yes` (the seed's one-time setup), or on Debian/Ubuntu "
    "`apt-get install qemu-user-static binfmt-support && update-binfmts --enable {entry}`"
)
_PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class DoctorInput:
    """What to check: the configured platforms, bases, mirrors and push repositories."""

    platforms: tuple[Platform, ...]
    bases: Mapping[str, str]  # target name -> base reference (before mirrors)
    mirrors: Mirrors
    repositories: Mapping[str, str]  # environment name -> repository
    check_network: bool = True


def run_doctor(
    what: DoctorInput,
    env: HostEnv,
    *,
    client_for: Callable[[str], RegistryClient] | None = None,
) -> DoctorReport:
    findings: list[DoctorFinding] = []
    findings += check_host(env, what.platforms)
    docker = probe_docker(env)
    findings += check_docker(docker, what.platforms)
    host_arch = host_architecture(env)
    for platform in what.platforms:
        if platform.architecture != host_arch:
            findings.append(check_binfmt(probe_binfmt(env, platform.architecture), platform))
    if what.check_network:
        make_client = client_for or (lambda host: RegistryClient(host, environ=env.environ))
        findings += _check_bases(what, make_client)
        findings += _check_repositories(what, env)
    findings.append(
        DoctorFinding(
            "verify",
            Status.INFO,
            "wrong architecture after a build? `docker inspect IMAGE | grep Architecture` shows "
            "only the config's label; `crossdock verify IMAGE` reads every binary (ELF machine, "
            "glibc symbol versions, wheel tags) and says which file is wrong",
        )
    )
    return DoctorReport(tuple(findings))


def check_host(env: HostEnv, platforms: Sequence[Platform]) -> list[DoctorFinding]:
    arch = host_architecture(env)
    emulated = [p.short for p in platforms if p.architecture != arch]
    summary = f"host architecture linux/{arch} ({env.machine})"
    if not emulated:
        return [DoctorFinding("host", Status.OK, summary + ": every configured platform is native")]
    # The seed's "performance issues": Apple Silicon builds amd64 under emulation, Intel arm64.
    return [
        DoctorFinding(
            "host",
            Status.INFO,
            f"{summary}: Dockerfile builds of {', '.join(emulated)} run under QEMU emulation "
            "(minutes instead of seconds: 164 s vs 6 s measured for a FastAPI + numpy service)",
            fix="build with crossdock's native backend (`crossdock build`, the Makefile's "
            "default): it installs the target's prebuilt wheels on the host, so every platform "
            "builds at native speed",
            native_avoids=True,
            details={"host": f"linux/{arch}", "emulated": emulated},
        )
    ]


def check_docker(facts: DockerFacts, platforms: Sequence[Platform]) -> list[DoctorFinding]:
    if facts.path is None:
        return [
            DoctorFinding(
                "docker",
                Status.WARN,
                "docker is not on PATH: the buildx backend (Dockerfiles) cannot run",
                fix="install Docker Engine and the buildx plugin to build Dockerfiles; or build "
                "without Docker: `crossdock build` writes --docker-archive / --oci-layout, "
                "or pushes",
                native_avoids=True,
            )
        ]
    out: list[DoctorFinding] = []
    if facts.server_version is None:
        out.append(
            DoctorFinding(
                "docker",
                Status.WARN,
                f"docker {facts.client_version or '?'} at {facts.path}, but the daemon does not "
                f"answer ({facts.server_error or 'no server version'})",
                fix="start dockerd (or Docker Desktop) and check `docker info`",
                native_avoids=True,
            )
        )
    else:
        out.append(
            DoctorFinding(
                "docker",
                Status.OK,
                f"docker client {facts.client_version}, daemon {facts.server_version}",
                details={"path": facts.path},
            )
        )
    if facts.buildx_version is None:
        out.append(
            DoctorFinding(
                "buildx",
                Status.WARN,
                "the docker buildx plugin is missing: `--platform` builds of the seed's "
                "Dockerfiles need it",
                fix="install docker-buildx (Debian trixie+/Ubuntu: apt-get install docker-buildx; "
                "else the plugin binary into ~/.docker/cli-plugins/docker-buildx)",
                native_avoids=True,
            )
        )
        return out
    out.append(DoctorFinding("buildx", Status.OK, facts.buildx_version))
    current = next((b for b in facts.builders if b.current), None)
    if current is None:
        if facts.server_version is not None:
            out.append(DoctorFinding("builders", Status.WARN, "no current buildx builder found"))
        return out
    wanted = [p.short for p in platforms]
    missing = [p for p in wanted if p not in current.platforms]
    detail = {
        "builders": [
            {
                "name": b.name,
                "driver": b.driver,
                "current": b.current,
                "platforms": list(b.platforms),
            }
            for b in facts.builders
        ]
    }
    summary = (
        f"builder {current.name} (driver {current.driver}, BuildKit {current.buildkit or '?'}) "
        f"builds {', '.join(current.platforms) or 'no platform'}"
    )
    if missing:
        out.append(
            DoctorFinding(
                "builders",
                Status.WARN,
                f"{summary}; missing {', '.join(missing)}: RUN steps for those platforms fail "
                "with 'exec format error'",
                fix="register QEMU (see the binfmt check), then restart the builder "
                "(`docker buildx inspect --bootstrap`; for the docker driver, restart dockerd)",
                native_avoids=True,
                details=detail,
            )
        )
    else:
        out.append(DoctorFinding("builders", Status.OK, summary, details=detail))
    if current.driver == "docker" and len(wanted) > 1:
        out.append(
            DoctorFinding(
                "builders",
                Status.INFO,
                "the docker driver cannot export a multi-platform result (no --load or --push of "
                "several platforms at once): crossdock's buildx backend builds one platform at a "
                "time, pushes each as TAG-ARCH and assembles the index",
                fix="for one multi-platform build: `docker buildx create --name multiarch "
                "--driver docker-container --use && docker buildx inspect --bootstrap`",
            )
        )
    return out


def check_binfmt(entry: BinfmtEntry, platform: Platform) -> DoctorFinding:
    fix = _QEMU_FIX.format(arch=platform.short, entry=entry.name)
    details = {"entry": entry.name, "state": entry.state, "flags": entry.flags}
    if entry.state == "unmounted":
        return DoctorFinding(
            "binfmt",
            Status.WARN,
            f"binfmt_misc is not mounted: {platform.short} binaries cannot run on this host, so "
            f"Dockerfile RUN steps for {platform.short} fail with 'exec format error'",
            fix="mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; then " + fix,
            native_avoids=True,
            details=details,
        )
    if entry.state != "enabled":
        return DoctorFinding(
            "binfmt",
            Status.WARN,
            f"no enabled QEMU registration for {platform.short} ({entry.name}: {entry.state}): "
            f"Dockerfile builds for {platform.short} fail with 'exec format error'",
            fix=fix,
            native_avoids=True,
            details=details,
        )
    if not entry.fix_binary:
        return DoctorFinding(
            "binfmt",
            Status.WARN,
            f"{entry.name} is enabled without the F (fix-binary) flag "
            f"(flags: {entry.flags or '-'}): "
            f"the interpreter {entry.interpreter} is not inside containers, so RUN steps for "
            f"{platform.short} fail with 'exec format error'",
            fix=fix,
            native_avoids=True,
            details=details,
        )
    return DoctorFinding(
        "binfmt",
        Status.OK,
        f"{entry.name} enabled (flags {entry.flags}): {platform.short} binaries run under "
        f"{entry.interpreter}",
        details=details,
    )


def _check_bases(
    what: DoctorInput, client_for: Callable[[str], RegistryClient]
) -> list[DoctorFinding]:
    out: list[DoctorFinding] = []
    seen: set[str] = set()
    with Registries(client_for, what.mirrors) as registries:
        for target, base in sorted(what.bases.items()):
            ref = Reference.parse(base)
            pull = what.mirrors.apply(ref)
            if str(pull) in seen:
                continue
            seen.add(str(pull))
            via = f" (via mirror {pull})" if pull != ref else ""
            try:
                _, found = registries.top(ref)
            except (CrossdockError, httpx.HTTPError) as err:
                out.append(
                    DoctorFinding(
                        "base",
                        Status.FAIL,
                        f"base {base}{via} for {target}: cannot read it ({err})",
                        fix="check the registry-mirrors setting (crossdock.toml or "
                        "CROSSDOCK_REGISTRY_MIRRORS) and that the registry answers",
                    )
                )
                continue
            have = list(found.platforms()) if isinstance(found, Index) else []
            missing = [
                p.short
                for p in what.platforms
                if isinstance(found, Index) and found.find(p) is None
            ]
            summary = f"base {base}{via} for {target}: " + (
                f"index with {', '.join(str(p) for p in have)}"
                if isinstance(found, Index)
                else "a single-platform manifest (no index)"
            )
            if not isinstance(found, Index):
                out.append(
                    DoctorFinding(
                        "base",
                        Status.WARN,
                        summary + "; other platforms cannot be built from this tag",
                        fix="use a multi-platform tag of the base (e.g. python:3.13-slim)",
                    )
                )
            elif missing:
                out.append(
                    DoctorFinding(
                        "base",
                        Status.FAIL,
                        f"{summary}; no {', '.join(missing)}: docker says 'image with reference "
                        "was found but does not match the specified platform'",
                        fix="choose a base that publishes those platforms, or drop them from "
                        "`platforms`",
                    )
                )
            else:
                out.append(DoctorFinding("base", Status.OK, summary))
    return out


def _check_repositories(what: DoctorInput, env: HostEnv) -> list[DoctorFinding]:
    out: list[DoctorFinding] = []
    for name, repository in sorted(what.repositories.items()):
        if not repository:
            out.append(
                DoctorFinding(
                    "registry",
                    Status.INFO,
                    f"environment {name}: no repository configured",
                    fix=f'set [environments.{name}] repository = "REGISTRY/REPO" in crossdock.toml',
                )
            )
            continue
        host = Reference.parse(repository).registry
        reachable, detail = _ping(host)
        # Only whether credentials exist and where from: never their values.
        credentials = find_credentials(host, env.environ)
        creds = f"credentials from {credentials.source}" if credentials else "no credentials"
        fix: str | None
        if not reachable:
            status = Status.FAIL
            summary = f"environment {name}: {host} does not answer ({detail})"
            fix = "check the repository host and the network (proxy, VPN)"
        elif credentials is None and not is_loopback_registry(host) and detail == "401":
            status = Status.WARN
            summary = f"environment {name}: {host} answers and wants credentials; {creds}"
            fix = (
                "log in (`docker login HOST`, or for ECR a docker-credential-ecr-login helper or "
                "AWS credentials) or set CROSSDOCK_REGISTRY_USERNAME/PASSWORD"
            )
        elif credentials is not None:
            status, summary, fix = _try_credentials(name, host, creds, env)
        else:
            status, summary, fix = Status.OK, f"environment {name}: {host} answers; {creds}", None
        out.append(
            DoctorFinding("registry", status, summary, fix=fix, details={"repository": repository})
        )
    return out


def _try_credentials(
    name: str, host: str, creds: str, env: HostEnv
) -> tuple[Status, str, str | None]:
    """Log in for real, as `docker login` does: an authenticated ``GET /v2/`` (a token from the
    registry's token server first, where it has one). Never prints the credentials."""
    from crossdock.errors import AuthError, RegistryError
    from crossdock.registry.client import RegistryClient

    where = f"environment {name}: {host}"
    try:
        with RegistryClient(host, environ=env.environ) as client:
            response = client.transport.request("GET", "/v2/", scopes=[])
            authenticated = client.transport.auth.header_for([]) is not None
    except AuthError:
        return (
            Status.FAIL,
            f"{where} refused the {creds}",
            (
                f"log in again (`docker login {host}`) or fix the credential helper / "
                "CROSSDOCK_REGISTRY_USERNAME/PASSWORD"
            ),
        )
    except RegistryError as err:
        return Status.WARN, f"{where}: could not check the {creds}: {err.message}", None
    if response.status_code != 200:
        return Status.WARN, f"{where} answered {response.status_code} to a login; {creds}", None
    if not authenticated:
        return Status.OK, f"{where} answers without asking for credentials; {creds} unused", None
    return Status.OK, f"{where} accepted the {creds}", None


def _ping(host: str) -> tuple[bool, str]:
    scheme = "http" if is_loopback_registry(host) else "https"
    try:
        response = httpx.get(
            f"{scheme}://{api_host(host)}/v2/", timeout=_PROBE_TIMEOUT, verify=system_ssl_context()
        )
    except httpx.HTTPError as err:
        return False, type(err).__name__
    # 200: open; 401: asks for credentials (it is a registry all the same).
    return response.status_code in (200, 401), str(response.status_code)
