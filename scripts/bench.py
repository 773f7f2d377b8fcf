"""crossdock's benchmark: the native build side by side with the seed's buildx + QEMU recipe.

Usage (through scripts/bench.sh, which sets up the stage and the example's lock):
    uv run python scripts/bench.py [--skip-buildx] [--skip-uv-cold] [--skip-big-deps]
                                   [--json PATH] [--keep]

Everything runs in one invocation on this machine, so the ratios compare runs made minutes
apart under the same load. Rows that take under 10 s are run 3 times (start-up 5 times) and
reported as the median, with the range. Measured:

1. Start-up: ``crossdock --version``, ``crossdock version``, ``crossdock --help``.
2. crossdock native builds of the example ``api`` service (App Runner target) for linux/arm64,
   linux/amd64 and both: cold (a fresh CROSSDOCK_CACHE_DIR; uv's own wheel cache stays warm) and
   warm (nothing changed: answered from the record of the last build), written to an OCI
   layout; cold ``--no-bytecode``; once more with a fresh UV_CACHE_DIR too (truly cold: wheels
   downloaded from PyPI); and pushed to the stage registry, cold and warm (an up-to-date
   registry). Wall time, CPU time (user + system of crossdock and its children), and peak memory
   three ways: crossdock's own process (getrusage RUSAGE_SELF), its largest child process
   (RUSAGE_CHILDREN: a per-process maximum, e.g. uv), and the sum over the process tree
   (sampled from /proc every 50 ms, so a lower bound), as a sum of RSS (shared pages counted in
   each process) and of PSS (each shared page counted once).
3. The seed's recipe: ``docker buildx build`` of example/backend/Dockerfile.apprunner per
   platform, arguments rendered by crossdock's buildx backend (``render_buildx_args``,
   ``mirrored_base_args``) plus ``--no-cache`` after ``docker buildx prune -af``; then warm
   (unchanged), and after edits of the service's code.
4. Code-only changes: an edit of the service's code rebuilt for arm64, amd64 and both (3 edits
   each), and rebuilt + pushed; which layers were reused and what the push uploaded. Then the
   path users take to a real registry: the stage's HTTPS registry (token realm on another host,
   credentials from a docker config), a no-op and code edits rebuilt and pushed there.
5. The floor: uv's own install of the same lock for each platform (uv export + uv pip install
   --target, warm uv cache), compileall of the tree, and tar + isal gzip of it.
6. Verification inside the build (``verify`` / ``total`` of each platform's ``timings``), and a
   standalone ``crossdock verify`` of the pushed image (fresh cache, then warm).
7. Peak RSS next to the dependency layer's uncompressed size, for the example and for the example
   plus the data-science set (pandas, pyarrow, scipy, scikit-learn), and for a service with a
   synthetic 1 GiB app layer.
8. Issue 14's targets, each with what this run measured, met or missed.

Prints a table and writes every measurement as JSON. It asserts nothing about the numbers.
"""

# ruff: noqa: T201 - a benchmark prints its numbers
from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crossdock.backends.buildx_args import BuildxInvocation, render_buildx_args
from crossdock.backends.dockerfile import mirrored_base_args, read_dockerfile
from crossdock.config import default_cache_dir
from crossdock.platform import Platform
from crossdock.registry.reference import Mirrors

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example"
SERVICE = "api"
TARGET = "apprunner"
DOCKERFILE_NAME = "Dockerfile.apprunner"
ARM64 = Platform.parse("linux/arm64")
AMD64 = Platform.parse("linux/amd64")
PLATFORM_SETS: dict[str, tuple[Platform, ...]] = {
    "arm64": (ARM64,),
    "amd64": (AMD64,),
    "both": (ARM64, AMD64),
}
# Extra dependencies for the "larger dependencies" point: wheels for cp313 on both platforms.
# The data-science set of issue 14 (300+ MB of dependencies per platform).
BIG_DEPS = ("pandas==3.1.1", "pyarrow==26.0.1", "scipy==1.18.1", "scikit-learn==1.9.1")
# Rows that take under this many seconds are run REPEATS times and reported as the median.
SHORT_ROW_S = 10.0
# Cold builds are repeated up to this long: a first cold build can pay for the machine's page
# cache (uv's wheels read from disk) and land just above SHORT_ROW_S, and one run would then be
# the row (the 06:18 run: arm64 cold 12.68 s once, against 5.3-5.7 s for amd64 right after).
COLD_ROW_S = 30.0
REPEATS = 3
STARTUP_REPEATS = 5
SYNTHETIC_LAYER_BYTES = 1 << 30
# crossdock's builds take seconds; buildx under QEMU takes minutes (the brief allows ~15).
CROSSDOCK_TIMEOUT_S = 600
BUILDX_TIMEOUT_S = 1500
SAMPLE_EVERY_S = 0.05

# Runs crossdock's CLI in this interpreter and, at exit, writes the peak RSS of the crossdock
# process itself and of its largest child (uv, the bytecode compiler) to CROSSDOCK_BENCH_RUSAGE.
_RUSAGE_WRAPPER = """
import atexit, json, os, resource, sys
def _write_rusage():
    with open(os.environ["CROSSDOCK_BENCH_RUSAGE"], "w") as out:
        json.dump({
            "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        }, out)
atexit.register(_write_rusage)
sys.argv[0] = "crossdock"
from crossdock.cli import main
main()
"""


@dataclass
class Run:
    """One timed command and what it reported."""

    label: str
    kind: str  # crossdock-build, crossdock-verify, buildx
    platforms: tuple[str, ...]
    cache: str
    output: str
    wall_s: float
    exit_code: int
    load_1min: float  # the machine's load average as the run started (others share it)
    self_rss_mb: float | None = None
    child_rss_mb: float | None = None
    tree_rss_mb: float | None = None
    tree_pss_mb: float | None = None
    # CPU seconds (user + system) of the process and its children: what the run costs apart
    # from waiting for the shared cores (None where the work happens in dockerd).
    cpu_s: float | None = None
    report: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def platform_reports(self) -> list[dict[str, Any]]:
        if not self.report:
            return []
        return list(self.report.get("platforms") or [])


class TreeSampler:
    """Samples the memory of a process and its descendants from /proc (lower bounds: a peak
    between two samples is missed). Two sums: of RSS (a page shared by several processes, a
    library or what a forked worker shares with its parent, is counted in each) and of PSS
    (``smaps_rollup``: a shared page counted once, split among its sharers), the tree's memory."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss_kb, pss_kb = self._tree_kb()
            self.peak_kb = max(self.peak_kb, rss_kb)
            self.peak_pss_kb = max(self.peak_pss_kb, pss_kb)
            self._stop.wait(SAMPLE_EVERY_S)

    def _tree_kb(self) -> tuple[int, int]:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                statm = (entry / "statm").read_text().split()
            except OSError:
                continue  # the process ended between listing and reading
            # The command name (field 2) may contain spaces: the parent pid follows its ')'.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
            rss[int(entry.name)] = int(statm[1]) * self._page_kb
        total, pss, todo = 0, 0, [self.root_pid]
        while todo:
            pid = todo.pop()
            total += rss.get(pid, 0)
            pss += _pss_kb(pid)
            todo.extend(children.get(pid, []))
        return total, pss


def _pss_kb(pid: int) -> int:
    """A process's proportional set size in KiB (0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:  # noqa: PTH123 - a /proc file
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


class Bench:
    def __init__(self, work: Path, log: Path, registry: str, mirrors: Mirrors) -> None:
        self.work = work
        self.log = log
        self.registry = registry
        self.mirrors = mirrors
        self.runs: list[Run] = []
        self.facts: dict[str, Any] = {}
        self._counter = 0
        self._pruned = False
        # The crossdock cache of each platform set's last cold build (warm for later rows).
        self.warm_caches: dict[str, Path] = {}

    # -- running things --------------------------------------------------------------------

    def _say(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    def _log_header(self, command: Sequence[str]) -> None:
        with self.log.open("a") as out:
            out.write(f"\n===== {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} $ ")
            out.write(" ".join(command) + "\n")

    def crossdock(
        self,
        label: str,
        args: Sequence[str],
        *,
        cache_dir: Path,
        kind: str = "crossdock-build",
        platforms: tuple[Platform, ...] = (),
        cache: str = "",
        output: str = "",
        extra_env: Mapping[str, str] | None = None,
        repeat: bool = False,
        json_report: bool = True,
    ) -> Run:
        """Run ``crossdock ARGS --json`` with its own cache folder; time it and its memory.
        With ``repeat``, a run under SHORT_ROW_S is run REPEATS times in all (the table shows
        the median)."""
        options: dict[str, Any] = {
            "cache_dir": cache_dir,
            "kind": kind,
            "platforms": platforms,
            "cache": cache,
            "output": output,
            "extra_env": extra_env,
            "json_report": json_report,
        }
        run = self._crossdock_once(label, args, **options)
        if repeat and run.exit_code == 0 and run.wall_s < SHORT_ROW_S:
            for _ in range(REPEATS - 1):
                run = self._crossdock_once(label, args, **options)
        return run

    def _crossdock_once(
        self,
        label: str,
        args: Sequence[str],
        *,
        cache_dir: Path,
        kind: str,
        platforms: tuple[Platform, ...],
        cache: str,
        output: str,
        extra_env: Mapping[str, str] | None,
        json_report: bool = True,
    ) -> Run:
        self._counter += 1
        rusage_file = self.work / f"rusage-{self._counter}.json"
        env = dict(os.environ)
        env.update(
            {"CROSSDOCK_CACHE_DIR": str(cache_dir), "CROSSDOCK_BENCH_RUSAGE": str(rusage_file)}
        )
        env.update(extra_env or {})
        # --json: the report the table reads; without it, the report for people (on a pipe).
        report_args = ["--json"] if json_report else []
        command = [sys.executable, "-c", _RUSAGE_WRAPPER, *args, *report_args]
        self._say(f"{label}: crossdock {' '.join(args)}")
        self._log_header(["crossdock", *args, *report_args])
        load = round(os.getloadavg()[0], 2)
        cpu_before = _children_cpu()
        started = time.perf_counter()
        with self.log.open("a") as errors:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,
            )
            with TreeSampler(process.pid) as sampler:
                try:
                    stdout, _ = process.communicate(timeout=CROSSDOCK_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    stdout, _ = process.communicate()
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        usage: dict[str, int] = {}
        if rusage_file.is_file():
            usage = json.loads(rusage_file.read_text())
        try:
            report = json.loads(stdout) if json_report and stdout.strip() else None
        except json.JSONDecodeError:
            report = None
        run = Run(
            label=label,
            kind=kind,
            platforms=tuple(p.architecture for p in platforms),
            cache=cache,
            output=output,
            wall_s=round(wall, 2),
            exit_code=process.returncode,
            load_1min=load,
            self_rss_mb=_mb(usage.get("self_kb")),
            child_rss_mb=_mb(usage.get("children_kb")),
            tree_rss_mb=_mb(sampler.peak_kb),
            tree_pss_mb=_mb(sampler.peak_pss_kb),
            cpu_s=round(cpu, 2),
            report=report,
        )
        if process.returncode != 0:
            self._say(f"{label}: FAILED with exit code {process.returncode} (see {self.log})")
        self.runs.append(run)
        return run

    def command(self, command: Sequence[str], *, timeout: float = 600, check: bool = True) -> float:
        """Run a helper command (docker, uv), its output to the log; return seconds taken."""
        self._log_header(command)
        started = time.perf_counter()
        with self.log.open("a") as out:
            done = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        if check and done.returncode != 0:
            raise SystemExit(
                f"bench: `{' '.join(command)}` failed ({done.returncode}); see {self.log}"
            )
        return time.perf_counter() - started

    # -- crossdock scenarios ---------------------------------------------------------------

    def build_args(self, project: Path, platforms: tuple[Platform, ...]) -> list[str]:
        return [
            "build",
            "-C",
            str(project),
            "--service",
            SERVICE,
            "--target",
            TARGET,
            "--platform",
            ",".join(p.short for p in platforms),
        ]

    def native_cold_warm(self, name: str, *, no_bytecode_too: bool) -> None:
        """Cold (REPEATS times when under COLD_ROW_S, each with a fresh crossdock cache: the
        median is the row) then warm (the last cold build's cache); optionally cold without
        bytecode (the seed's Dockerfile compiles none, so that row is the like-for-like one)."""
        platforms = PLATFORM_SETS[name]
        args = self.build_args(EXAMPLE, platforms)
        cache_dir = self.cold_runs(
            f"crossdock {name} cold",
            lambda attempt: [*args, "--oci-layout", str(self.work / f"layout-{name}-{attempt}")],
            cache_prefix=f"cache-{name}",
            platforms=platforms,
            dependency_sizes=f"example {name}",
        )
        self.warm_caches[name] = cache_dir
        # Both platforms once more as a person (or a CI log) sees it: the report for people
        # instead of --json.
        for json_report in (True, False) if name == "both" else (True,):
            self.crossdock(
                f"crossdock {name} warm" + ("" if json_report else ", no --json"),
                [*args, "--oci-layout", str(self.work / f"layout-{name}-warm")],
                cache_dir=cache_dir,
                platforms=platforms,
                cache="warm",
                output="oci-layout",
                repeat=True,
                json_report=json_report,
            )
        if no_bytecode_too:
            self.cold_runs(
                f"crossdock {name} cold --no-bytecode",
                lambda attempt: [
                    *args,
                    "--no-bytecode",
                    "--oci-layout",
                    str(self.work / f"layout-{name}-nobc-{attempt}"),
                ],
                cache_prefix=f"cache-{name}-nobc",
                platforms=platforms,
            )

    def native_cold_debian_compiler(self, name: str) -> None:
        """Cold again, the bytecode compiled by Debian trixie's python3.13 instead of this
        machine's (pyenv's 3.13.0, built without PGO or LTO): the interpreter build the seed
        Dockerfile's BuildKit build compiles with (in the image). The same work with another
        build of the compiler; the pycs, and so the digests, differ (another patch release)."""
        python = self.debian_python()
        if python is None:
            self._say("no Debian python3.13 in the stage's root filesystems: row skipped")
            return
        platforms = PLATFORM_SETS[name]
        args = self.build_args(EXAMPLE, platforms)
        self.cold_runs(
            f"crossdock {name} cold, Debian's python compiles",
            lambda attempt: [
                *args,
                "--oci-layout",
                str(self.work / f"layout-{name}-deb-{attempt}"),
            ],
            cache_prefix=f"cache-{name}-deb",
            platforms=platforms,
            extra_env={"CROSSDOCK_BYTECODE_PYTHON": str(python)},
        )

    def debian_python(self) -> Path | None:
        """A launcher of Debian trixie's python3.13 unpacked from the stage's amd64 root
        filesystem (kept under the bench's cache folder), run through its own dynamic loader
        (this machine's glibc is older); None when the stage has built no such file system."""
        rootfs = sorted(
            (default_cache_dir() / "stage" / "rootfs").glob("amd64-*.tar"),
            key=lambda tar: tar.stat().st_mtime,
        )
        if not rootfs:
            return None
        unpacked = default_cache_dir() / "bench" / f"debian-python-{rootfs[-1].stem}"
        launcher = unpacked / "python3.13"
        if not launcher.is_file():
            unpacked.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=unpacked.parent, prefix=".debian-python-"))
            self.command(["tar", "-C", str(scratch), "-xf", str(rootfs[-1]), "./usr"])
            lib = scratch / "usr" / "lib" / "x86_64-linux-gnu"
            (scratch / "python3.13").write_text(
                "#!/bin/sh\n"
                'here=$(dirname "$(readlink -f "$0")")\n'
                'exec "$here/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path '
                '"$here/usr/lib/x86_64-linux-gnu" "$here/usr/bin/python3.13" "$@"\n'
            )
            (scratch / "python3.13").chmod(0o755)
            if not (lib / "ld-linux-x86-64.so.2").exists():
                shutil.rmtree(scratch, ignore_errors=True)
                return None
            shutil.rmtree(unpacked, ignore_errors=True)
            scratch.rename(unpacked)
        return launcher

    def cold_runs(
        self,
        label: str,
        args_of: Callable[[int], list[str]],
        *,
        cache_prefix: str,
        platforms: tuple[Platform, ...],
        dependency_sizes: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> Path:
        """A cold build (an empty crossdock cache folder of its own, uv's cache as it is) to an
        OCI layout, run REPEATS times in all when the first takes under COLD_ROW_S; the cache
        folder of the last run is returned (for the warm builds after it)."""
        attempt = 0
        while True:
            attempt += 1
            cache_dir = self.work / f"{cache_prefix}-cold{attempt}"
            layout = args_of(attempt)[-1]
            run = self.crossdock(
                label,
                args_of(attempt),
                cache_dir=cache_dir,
                platforms=platforms,
                cache="cold",
                output="oci-layout",
                extra_env=extra_env,
            )
            if attempt == 1 and dependency_sizes is not None:
                self._record_dependency_sizes(dependency_sizes, run, Path(layout))
            if run.exit_code != 0 or run.wall_s >= COLD_ROW_S or attempt == REPEATS:
                return cache_dir

    def native_uv_cold(self) -> None:
        platforms = PLATFORM_SETS["both"]
        self.crossdock(
            "crossdock both, uv cold",
            [
                *self.build_args(EXAMPLE, platforms),
                "--oci-layout",
                str(self.work / "layout-uvcold"),
            ],
            cache_dir=self.work / "cache-uvcold",
            platforms=platforms,
            cache="cold+uv cold",
            output="oci-layout",
            extra_env={"UV_CACHE_DIR": str(self.work / "uv-cache-fresh")},
        )

    def native_push_and_verify(self, repository: str) -> None:
        platforms = PLATFORM_SETS["both"]
        cache_dir = self.work / "cache-push"
        for state in ("cold", "warm"):
            self.crossdock(
                f"crossdock both {state} --push",
                [*self.build_args(EXAMPLE, platforms), "--push", f"{repository}:latest"],
                cache_dir=cache_dir,
                platforms=platforms,
                cache=state,
                output="push",
                repeat=state == "warm",
            )
        verify_cache = self.work / "cache-verify"
        for state in ("cold", "warm"):
            self.crossdock(
                f"crossdock verify {state}",
                ["verify", f"{repository}:latest"],
                cache_dir=verify_cache,
                kind="crossdock-verify",
                platforms=platforms,
                cache=state,
                output="registry",
            )

    def big_dependencies(self) -> None:
        """The example plus pandas, pyarrow, scipy and scikit-learn: a dependency layer three
        times larger; is peak memory the same?"""
        project = self.copy_example("example-big")
        pyproject = project / "backend" / SERVICE / "pyproject.toml"
        text = pyproject.read_text()
        extra = "".join(f'  "{spec}",\n' for spec in BIG_DEPS)
        text = text.replace('  "orjson==', extra + '  "orjson==', 1)
        pyproject.write_text(text)
        self.lock(project)
        platforms = PLATFORM_SETS["both"]
        layout = self.work / "layout-big"
        run = self.crossdock(
            "crossdock both cold, data-science set",
            [*self.build_args(project, platforms), "--oci-layout", str(layout)],
            cache_dir=self.work / "cache-big",
            platforms=platforms,
            cache="cold",
            output="oci-layout",
        )
        self._record_dependency_sizes("example+data-science both", run, layout)

    def copy_example(self, name: str) -> Path:
        destination = self.work / name
        shutil.copytree(
            EXAMPLE,
            destination,
            ignore=shutil.ignore_patterns("out", ".venv", "__pycache__", "*.pyc"),
        )
        return destination

    def lock(self, project: Path) -> None:
        uv = shutil.which("uv") or "uv"
        self.command([uv, "lock", "--quiet", "--project", str(project / "backend" / SERVICE)])

    def code_change_native(self, project: Path, repository: str) -> None:
        """A warm build of a copy, then REPEATS times: one edit of the service's code and a
        rebuild, for each platform alone and both; then edits rebuilt and pushed."""
        # The push scenario's cache: it has built these dependencies and pushed this repository.
        cache_dir = self.work / "cache-push"
        for name in ("arm64", "amd64", "both"):
            platforms = PLATFORM_SETS[name]
            suffix = "" if name == "both" else f" ({name})"
            self.crossdock(
                f"code change: before (warm){suffix}",
                [*self.build_args(project, platforms), "--oci-layout", str(self.work / "cc0")],
                cache_dir=cache_dir,
                platforms=platforms,
                cache="warm",
                output="oci-layout",
            )
            for attempt in range(REPEATS):
                edit_service_code(project)
                self.crossdock(
                    f"code change: after{suffix}",
                    [
                        *self.build_args(project, platforms),
                        "--oci-layout",
                        str(self.work / f"cc-{name}-{attempt}"),
                    ],
                    cache_dir=cache_dir,
                    platforms=platforms,
                    cache="warm, code edited",
                    output="oci-layout",
                )
        platforms = PLATFORM_SETS["both"]
        for _ in range(REPEATS):
            edit_service_code(project)
            self.crossdock(
                "code change: after --push",
                [*self.build_args(project, platforms), "--push", f"{repository}:latest"],
                cache_dir=cache_dir,
                platforms=platforms,
                cache="warm, code edited",
                output="push",
            )

    def https_registry(self, project: Path, stamp: str) -> None:
        """The path users take to ECR, Docker Hub or GHCR: the stage's HTTPS registry with its
        token realm on another host, credentials from a docker config, the stage's CA trusted
        through SSL_CERT_FILE. A first push (the base's layers too: another registry), the
        unchanged rebuild pushed again (no-op), then edits of the service's code rebuilt and
        pushed, REPEATS times each."""
        registry = os.environ.get("CROSSDOCK_STAGE_HTTPS_REGISTRY")
        user = os.environ.get("CROSSDOCK_STAGE_HTTPS_USER")
        password_file = os.environ.get("CROSSDOCK_STAGE_HTTPS_PASSWORD_FILE")
        bundle = os.environ.get("CROSSDOCK_STAGE_CA_BUNDLE")
        if not (registry and user and password_file and bundle):
            self._say("no HTTPS registry on the stage (stage.sh env): its rows are skipped")
            return
        config = self.work / "docker-config"
        config.mkdir(exist_ok=True)
        secret = f"{user}:{Path(password_file).read_text().strip()}"
        auth = base64.b64encode(secret.encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
        env = {"DOCKER_CONFIG": str(config), "SSL_CERT_FILE": bundle}
        platforms = PLATFORM_SETS["both"]
        args = [*self.build_args(project, platforms), "--push"]
        target = f"{registry}/bench/{SERVICE}-{stamp}:latest"
        options: dict[str, Any] = {
            "cache_dir": self.work / "cache-push",  # these dependencies built already
            "platforms": platforms,
            "output": "push (HTTPS)",
            "extra_env": env,
        }
        edit_service_code(project)
        self.crossdock("crossdock both --push (HTTPS), first", [*args, target], **options)
        self.crossdock(
            "crossdock both warm --push (HTTPS)",
            [*args, target],
            cache="warm",
            repeat=True,
            **options,
        )
        for _ in range(REPEATS):
            edit_service_code(project)
            self.crossdock(
                "code change: after --push (HTTPS)",
                [*args, target],
                cache="warm, code edited",
                **options,
            )

    def startup(self) -> None:
        """``crossdock --version``, ``crossdock version`` and ``--help`` as a user runs them
        (the console script), STARTUP_REPEATS times each."""
        script = Path(sys.executable).parent / "crossdock"
        for args in (["--version"], ["version"], ["--help"]):
            label = f"crossdock {' '.join(args)}"
            for _ in range(STARTUP_REPEATS):
                load = round(os.getloadavg()[0], 2)
                cpu_before = _children_cpu()
                started = time.perf_counter()
                done = subprocess.run(
                    [str(script), *args], capture_output=True, check=False, timeout=60
                )
                wall = time.perf_counter() - started
                cpu = _children_cpu() - cpu_before
                self.runs.append(
                    Run(
                        label=label,
                        kind="crossdock-startup",
                        platforms=(),
                        cache="-",
                        output="terminal",
                        wall_s=round(wall, 3),
                        exit_code=done.returncode,
                        load_1min=load,
                        cpu_s=round(cpu, 3),
                    )
                )

    def floor(self, project: Path) -> None:
        """What the work itself costs with uv's native tools, per platform and warm uv cache:
        uv export + uv pip install --target of the same lock for the target platform, bytecode
        (compileall, one worker per core), and a tar + gzip (isal, level 2) of the tree."""
        service = project / "backend" / SERVICE
        uv = shutil.which("uv") or "uv"
        requirements = self.work / "floor-requirements.txt"
        for platform in (ARM64, AMD64):
            target = self.work / f"floor-{platform.architecture}"
            shutil.rmtree(target, ignore_errors=True)
            machine_name = "aarch64" if platform == ARM64 else "x86_64"
            load = round(os.getloadavg()[0], 2)
            steps = {
                "install": [
                    [
                        uv,
                        "export",
                        "--locked",
                        "--no-dev",
                        "--no-emit-project",
                        "--quiet",
                        "--project",
                        str(service),
                        "-o",
                        str(requirements),
                    ],
                    [
                        uv,
                        "pip",
                        "install",
                        "--quiet",
                        "--target",
                        str(target),
                        "--python-platform",
                        f"{machine_name}-manylinux_2_40",
                        "--python-version",
                        "3.13",
                        "--only-binary",
                        ":all:",
                        "--no-deps",
                        "-r",
                        str(requirements),
                    ],
                ],
                "bytecode": [
                    [
                        sys.executable,
                        "-m",
                        "compileall",
                        "-q",
                        "-q",
                        "-j",
                        "0",
                        "--invalidation-mode",
                        "unchecked-hash",
                        str(target),
                    ]
                ],
                "compress": [
                    [
                        "bash",
                        "-c",
                        (
                            f"tar -C {target} -cf - . | {sys.executable} -m isal.igzip -c -2 "
                            "> /dev/null"
                        ),
                    ]
                ],
            }
            seconds: dict[str, float] = {}
            for step, commands in steps.items():
                seconds[step] = round(sum(self.command(c) for c in commands), 2)
            self.runs.append(
                Run(
                    label=f"floor {platform.architecture}",
                    kind="floor",
                    platforms=(platform.architecture,),
                    cache="uv warm",
                    output="/dev/null",
                    wall_s=round(sum(seconds.values()), 2),
                    exit_code=0,
                    load_1min=load,
                    notes=[", ".join(f"{k} {v:.2f}s" for k, v in seconds.items())],
                )
            )
            shutil.rmtree(target, ignore_errors=True)

    def synthetic_layer(self) -> None:
        """A service with 1 GiB of incompressible data files: one huge app layer (amd64, the
        dependencies from a warm cache). Peak memory should not grow with the layer."""
        project = self.copy_example("example-1g")
        data = project / "backend" / SERVICE / "app" / "data"
        data.mkdir()
        chunk = 1 << 24
        for index in range(SYNTHETIC_LAYER_BYTES // (128 << 20)):
            with (data / f"blob-{index}.bin").open("wb") as out:
                for _ in range((128 << 20) // chunk):
                    out.write(os.urandom(chunk))
        self.lock(project)
        self.crossdock(
            "crossdock amd64, 1 GiB app layer",
            [
                *self.build_args(project, PLATFORM_SETS["amd64"]),
                "--oci-layout",
                str(self.work / "layout-1g"),
            ],
            cache_dir=self.warm_caches["amd64"],
            platforms=PLATFORM_SETS["amd64"],
            cache="warm deps, new 1 GiB app layer",
            output="oci-layout",
        )
        shutil.rmtree(project, ignore_errors=True)
        shutil.rmtree(self.work / "layout-1g", ignore_errors=True)

    def _record_dependency_sizes(self, name: str, run: Run, layout: Path) -> None:
        sizes: dict[str, dict[str, int]] = {}
        for platform in run.platform_reports():
            for layer in platform["layers"]:
                if layer["role"] != "dependencies":
                    continue
                blob = layout / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]
                if blob.is_file():
                    sizes[platform["platform"]] = {
                        "compressed": layer["size"],
                        "uncompressed": uncompressed_size(blob),
                    }
        self.facts.setdefault("dependency_layers", {})[name] = {
            "run": run.label,
            "sizes": sizes,
            "self_rss_mb": run.self_rss_mb,
            "child_rss_mb": run.child_rss_mb,
            "tree_rss_mb": run.tree_rss_mb,
            "tree_pss_mb": run.tree_pss_mb,
        }

    # -- the seed's recipe -----------------------------------------------------------------

    def buildx_code_edits(self, project: Path, platform: Platform) -> None:
        """REPEATS edits of the service's code, each rebuilt by BuildKit (warm)."""
        for _ in range(REPEATS):
            edit_service_code(project)
            self.buildx(project, platform, ("code edited",))

    def buildx(self, project: Path, platform: Platform, states: Sequence[str]) -> None:
        """``docker buildx build`` of one platform, in each state: "cold" (--no-cache, after
        ``docker buildx prune -af`` when it is the first cold build), "cold bytecode" (the same
        with ``UV_COMPILE_BYTECODE=1``: bytecode on both sides), "warm", "code edited". A cold
        state is run REPEATS times in all when it takes under COLD_ROW_S (the median is the
        row, as for crossdock's cold builds)."""
        for state in states:
            for attempt in range(1, REPEATS + 1):
                wall, code = self._buildx_once(project, platform, state)
                cold = state.startswith("cold")
                if not cold or code != 0 or wall >= COLD_ROW_S or attempt == REPEATS:
                    break

    def _buildx_once(self, project: Path, platform: Platform, state: str) -> tuple[float, int]:
        context = project / "backend"
        plain = context / DOCKERFILE_NAME
        facts = read_dockerfile(plain.read_text())
        base_args = mirrored_base_args(facts, self.mirrors)
        dockerfile = with_uv_bytecode(plain) if state == "cold bytecode" else plain
        args = {"SERVICE_FOLDER": SERVICE, **base_args}
        if facts.declares_targetplatform:
            # As the buildx backend does: dockerd 20.10's BuildKit empties a
            # redeclared TARGETPLATFORM unless it is passed explicitly.
            args["TARGETPLATFORM"] = platform.short
        invocation = BuildxInvocation(
            context=context,
            dockerfile=dockerfile,
            platforms=(platform,),
            build_args=args,
            tags=(f"crossdock-bench/{SERVICE}:{platform.architecture}",),
            output="load",
        )
        rendered = render_buildx_args(invocation)
        notes: list[str] = []
        if state.startswith("cold"):
            if not self._pruned:
                # BuildKit's cache emptied once (later cold builds keep the earlier
                # platforms' cache for the "code edited" builds; --no-cache ignores it).
                self.command(["docker", "buildx", "prune", "-af"])
                self._pruned = True
                notes.append("after docker buildx prune -af")
            rendered.insert(2, "--no-cache")
            notes.append("--no-cache")
        command = ["docker", *rendered]
        label = f"buildx {platform.architecture} {state}"
        self._say(f"{label}: {' '.join(command)}")
        self._log_header(command)
        load = round(os.getloadavg()[0], 2)
        started = time.perf_counter()
        with self.log.open("a") as out:
            try:
                done = subprocess.run(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILDX_TIMEOUT_S,
                    check=False,
                )
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = -1
                notes.append(f"timed out after {BUILDX_TIMEOUT_S} s")
        wall = time.perf_counter() - started
        if code != 0:
            self._say(f"{label}: FAILED ({code}); see {self.log}")
        self.runs.append(
            Run(
                label=label,
                kind="buildx",
                platforms=(platform.architecture,),
                cache=state,
                output="docker (--load)",
                wall_s=round(wall, 2),
                exit_code=code,
                load_1min=load,
                notes=[*notes, " ".join(command)],
            )
        )
        return wall, code


def with_uv_bytecode(dockerfile: Path) -> Path:
    """A copy of the seed's Dockerfile whose ``uv sync`` compiles bytecode (as crossdock does by
    default), beside it in the same build context."""
    text = dockerfile.read_text()
    marker = "ENV UV_NATIVE_TLS=1"
    if marker not in text:
        raise SystemExit(f"bench: {dockerfile} has no `{marker}` line to add bytecode to")
    variant = dockerfile.with_name(dockerfile.name + ".bytecode")
    variant.write_text(text.replace(marker, "ENV UV_COMPILE_BYTECODE=1\n" + marker, 1))
    return variant


def edit_service_code(project: Path) -> None:
    """A code-only change: one more line in the service's main module."""
    main = project / "backend" / SERVICE / "app" / "main.py"
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with main.open("a") as out:
        out.write(f"\n# benchmark: a code-only change ({stamp})\n")


def uncompressed_size(blob: Path) -> int:
    """Bytes of a gzip layer once decompressed (streamed: the layer is never held in memory)."""
    total = 0
    with gzip.open(blob, "rb") as stream:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
    return total


# -- the table ------------------------------------------------------------------------------


def _find(runs: Sequence[Run], label: str) -> Run | None:
    """The run of ``label`` with the median wall time (the upper median of an even count)."""
    found = sorted((r for r in runs if r.label == label and r.exit_code == 0), key=_wall)
    return found[len(found) // 2] if found else None


def _wall(run: Run) -> float:
    return run.wall_s


def _spread(runs: Sequence[Run], label: str) -> str:
    walls = sorted(r.wall_s for r in runs if r.label == label and r.exit_code == 0)
    if len(walls) < 2:
        return ""
    return f"median of {len(walls)} ({walls[0]:g}-{walls[-1]:g})"


def _ratio(top: Run | None, bottom: Run | None) -> str:
    if top is None or bottom is None or bottom.wall_s <= 0:
        return "n/a"
    return f"{top.wall_s / bottom.wall_s:.1f}x"


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _steps(run: Run) -> str:
    parts = []
    for platform in run.platform_reports():
        timings = platform.get("timings") or {}
        verify, total = timings.get("verify"), timings.get("total")
        if verify is None or not total:
            continue
        arch = platform["platform"].split("/")[1]
        deps = timings.get("dependencies", 0.0)
        parts.append(
            f"{arch} deps {deps:.1f} verify {verify:.2f} total {total:.2f}"
            f" (verify {verify / total:.0%})"
        )
    return "; ".join(parts)


def _layers(run: Run) -> str:
    parts = []
    for platform in run.platform_reports():
        arch = platform["platform"].split("/")[1]
        layers = " ".join(
            f"{la['role']}:{'hit' if la['cached'] else 'new'}" for la in platform["layers"]
        )
        parts.append(f"{arch}[{layers}]")
    pushed = ((run.report or {}).get("push") or {}).get("pushed")
    if pushed:
        parts.append(
            f"uploaded {pushed['blobs_uploaded']} blob(s) {pushed['bytes_uploaded']:,} B, "
            f"{pushed['blobs_present']} already there, {pushed['blobs_mounted']} mounted"
        )
    return " ".join(parts)


def _layer_digests(run: Run) -> dict[tuple[str, str], str]:
    return {
        (platform["platform"], layer["role"]): layer["digest"]
        for platform in run.platform_reports()
        for layer in platform["layers"]
    }


def _code_change_lines(runs: Sequence[Run]) -> list[str]:
    """Which layers an edit of the service's code changed (digests before vs after)."""
    before, after = _find(runs, "code change: before (warm)"), _find(runs, "code change: after")
    if before is None or after is None:
        return []
    old, new = _layer_digests(before), _layer_digests(after)
    lines = ["", "Code-only change (layer digests before -> after the edit):"]
    for (platform, role), digest in new.items():
        state = "same (reused)" if old.get((platform, role)) == digest else "NEW"
        lines.append(f"  {platform:<16} {role:<13} {state:<14} {digest[:19]}")
    lines.append(f"  rebuild {after.wall_s:.2f}s (unchanged warm build {before.wall_s:.2f}s)")
    for where, label in (
        ("", "code change: after --push"),
        (" over HTTPS", "code change: after --push (HTTPS)"),
    ):
        pushed = _find(runs, label)
        if pushed is not None:
            lines.append(f"  rebuild + push{where} {pushed.wall_s:.2f}s: {_layers(pushed)}")
    return lines


def _target_lines(runs: Sequence[Run]) -> list[str]:
    """Issue 14's targets, each with what this run measured (medians where repeated)."""

    def wall(label: str) -> float | None:
        run = _find(runs, label)
        return None if run is None else run.wall_s

    def ratio(top: str, bottom: str) -> float | None:
        a, b = wall(top), wall(bottom)
        return None if a is None or b is None or b <= 0 else a / b

    rows: list[tuple[str, float | None, str, bool | None]] = []

    def at_most(name: str, value: float | None, limit: float, unit: str = "s") -> None:
        rows.append((name, value, f"<= {limit:g}{unit}", None if value is None else value <= limit))

    def cpu_of(label: str) -> str:
        run = _find(runs, label)
        return "" if run is None or run.cpu_s is None else f"(cpu {run.cpu_s:g} s)"

    def at_least(name: str, value: float | None, limit: float) -> None:
        rows.append((name, value, f">= {limit:g}x", None if value is None else value >= limit))

    timed = {
        **{
            f"crossdock {args}": (f"crossdock {args}", 0.15)
            for args in ("--version", "version", "--help")
        },
        "no-op, both platforms, OCI layout": ("crossdock both warm", 0.25),
        "no-op, both platforms, OCI layout, no --json": ("crossdock both warm, no --json", 0.25),
        "no-op, both platforms, up-to-date registry": ("crossdock both warm --push", 0.25),
        "no-op, both platforms, up-to-date HTTPS registry": (
            "crossdock both warm --push (HTTPS)",
            0.25,
        ),
        "code-only change, arm64": ("code change: after (arm64)", 0.35),
        "code-only change, amd64": ("code change: after (amd64)", 0.35),
        "code-only change, both platforms": ("code change: after", 0.5),
    }
    for name, (label, limit) in timed.items():
        at_most(f"{name} {cpu_of(label)}".strip(), wall(label), limit)
    for arch in ("arm64", "amd64"):
        at_least(
            f"code-only {arch}: buildx code edited / crossdock",
            ratio(f"buildx {arch} code edited", f"code change: after ({arch})"),
            1.0,
        )
        at_least(
            f"no-op {arch}: buildx warm / crossdock warm",
            ratio(f"buildx {arch} warm", f"crossdock {arch} warm"),
            1.0,
        )
    for arch, factor in (("arm64", 30.0), ("amd64", 1.5)):
        at_least(
            f"cold {arch}, bytecode on both sides: buildx / crossdock",
            ratio(f"buildx {arch} cold bytecode", f"crossdock {arch} cold"),
            factor,
        )
        at_least(
            f"cold {arch}, no bytecode on either side: buildx / crossdock",
            ratio(f"buildx {arch} cold", f"crossdock {arch} cold --no-bytecode"),
            factor,
        )
    at_most("both platforms, crossdock cache empty, uv warm", wall("crossdock both cold"), 3.0)
    singles = [w for w in (wall("crossdock arm64 cold"), wall("crossdock amd64 cold")) if w]
    both = wall("crossdock both cold")
    both_vs_one = both / max(singles) if both and singles else None
    at_most("both platforms / the slower single platform (cold)", both_vs_one, 1.3, "x")
    # Under 300 MB (300e6 bytes: 286.1 MiB), the process tree's peak, two ways (TreeSampler).
    for label, name in (
        ("crossdock both cold, data-science set", "data-science set both"),
        ("crossdock amd64, 1 GiB app layer", "1 GiB app layer"),
    ):
        run = _find(runs, label)
        rss = None if run is None else run.tree_rss_mb
        pss = None if run is None else run.tree_pss_mb
        at_most(f"peak tree memory, {name}, RSS sum", rss, 286.1, " MiB")
        at_most(f"peak tree memory, {name}, PSS sum", pss, 286.1, " MiB")
    lines = ["", "Issue 14 targets (medians where repeated; see the load column):"]
    for name, value, goal, met in rows:
        shown_value = "-" if value is None else f"{value:.2f}"
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        lines.append(f"  {name:<52} {shown_value:>8}  target {goal:<9} {verdict}")
    lines.extend(
        f"  {run.label:<52} {run.wall_s:>8.2f}  ({'; '.join(run.notes)})"
        for run in runs
        if run.kind == "floor"
    )
    return lines


def render(runs: Sequence[Run], facts: Mapping[str, Any]) -> str:
    lines: list[str] = []
    header = (
        f"{'run':<38} {'wall s':>8} {'cpu s':>6} {'load':>5} {'self MiB':>8} {'childMiB':>8}"
        f" {'tree MiB':>8}  detail"
    )
    lines += ["", "Timings and peak RSS (self = crossdock's process, child = its largest child,"]
    lines += ["tree = sampled sum over the process tree; buildx's work happens in dockerd;"]
    lines += ["cpu = user + system seconds of crossdock and its children (for a median row: of"]
    lines += ["the median run); load = the machine's 1-minute load average as the run started)"]
    lines += [""]
    lines += [header, "-" * len(header)]
    labels = list(dict.fromkeys(run.label for run in runs))
    for label in labels:
        same = [r for r in runs if r.label == label]
        failed = [r for r in same if r.exit_code != 0]
        run = _find(runs, label) or same[-1]
        status = f" FAILED({failed[0].exit_code})" if failed else ""
        detail = _layers(run) if run.kind == "crossdock-build" else "; ".join(run.notes[:1])
        if run.kind == "buildx":
            detail = ""
        spread = _spread(runs, label)
        detail = f"{spread}  {detail}" if spread else detail
        if run.kind == "crossdock-verify":
            detail = ", ".join(
                f"{p['platform'].split('/')[1]} {'passed' if p['passed'] else 'FAILED'}"
                f" (verify {p.get('seconds', 0):.2f}s)"
                for p in run.platform_reports()
            )
        lines.append(
            f"{run.label + status:<38} {run.wall_s:>8.2f} {_fmt(run.cpu_s):>6} "
            f"{run.load_1min:>5.1f} "
            f"{_fmt(run.self_rss_mb):>8} "
            f"{_fmt(run.child_rss_mb):>8} {_fmt(run.tree_rss_mb):>8}  {detail}"
        )
    lines += _target_lines(runs)
    lines += ["", "Ratios (buildx wall / crossdock wall, same run):"]
    for arch in ("arm64", "amd64"):
        pairs = (
            ("cold bytecode", "cold"),
            ("cold bytecode", "cold, Debian's python compiles"),
            ("cold", "cold --no-bytecode"),
            ("cold", "cold"),
            ("cold bytecode", "warm"),
        )
        for buildx_state, state in pairs:
            top = _find(runs, f"buildx {arch} {buildx_state}")
            bottom = _find(runs, f"crossdock {arch} {state}")
            lines.append(
                f"  {arch}: buildx {buildx_state} / crossdock {state}: {_ratio(top, bottom)}"
            )
        lines.append(
            f"  {arch}: buildx warm / crossdock warm: "
            f"{_ratio(_find(runs, f'buildx {arch} warm'), _find(runs, f'crossdock {arch} warm'))}"
        )
        edited = _find(runs, f"code change: after ({arch})")
        lines.append(
            f"  {arch}: buildx code edited / crossdock code edited: "
            f"{_ratio(_find(runs, f'buildx {arch} code edited'), edited)}"
        )
    lines += ["", "Steps inside the build, seconds per platform (verify share of the total):"]
    for label in labels:
        median = _find(runs, label)
        if median is not None and median.kind == "crossdock-build":
            lines.append(f"  {median.label:<36} {_steps(median)}")
    lines += _code_change_lines(runs)
    dependency_layers = facts.get("dependency_layers", {})
    if dependency_layers:
        lines += ["", "Peak memory vs dependency layer size (cold builds):"]
        for name, entry in dependency_layers.items():
            sizes = ", ".join(
                f"{p.split('/')[1]} {s['uncompressed'] / 2**20:.0f} MiB"
                f" ({s['compressed'] / 2**20:.0f} MiB gz)"
                for p, s in entry["sizes"].items()
            )
            lines.append(
                f"  {name:<28} deps layer {sizes}; peak RSS self {_fmt(entry['self_rss_mb'])} MiB,"
                f" child {_fmt(entry['child_rss_mb'])} MiB, tree {_fmt(entry['tree_rss_mb'])} MiB"
                f" (PSS {_fmt(entry.get('tree_pss_mb'))} MiB)"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": os.uname().release,
        "load_average_at_start": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "python": sys.version.split()[0],
        "max_rss_unit": "ru_maxrss in KiB (Linux), shown in MiB",
        "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
    }


def run_scenarios(bench: Bench, options: argparse.Namespace, repository: str, stamp: str) -> None:
    # Side by side: each platform's crossdock builds right next to its buildx builds, so that
    # both see the same load on a shared machine.
    project = bench.copy_example("example-edit")
    bench.startup()
    for name, platform in (("arm64", ARM64), ("amd64", AMD64)):
        bench.native_cold_warm(name, no_bytecode_too=True)
        if not options.skip_buildx:
            bench.buildx(project, platform, ("cold", "cold bytecode", "warm", "warm", "warm"))
        bench.native_cold_debian_compiler(name)
    bench.native_cold_warm("both", no_bytecode_too=False)
    if not options.skip_uv_cold:
        bench.native_uv_cold()
    bench.native_push_and_verify(repository)
    if not options.skip_big_deps:
        bench.big_dependencies()
    bench.code_change_native(project, repository)
    bench.https_registry(project, stamp)
    if not options.skip_buildx:
        for platform in (ARM64, AMD64):
            bench.buildx_code_edits(project, platform)
    bench.floor(project)
    if not options.skip_big_deps:
        bench.synthetic_layer()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--skip-buildx", action="store_true", help="skip the QEMU builds")
    parser.add_argument(
        "--skip-uv-cold", action="store_true", help="skip the build with a fresh uv cache"
    )
    parser.add_argument(
        "--skip-big-deps", action="store_true", help="skip the +scipy +pandas build"
    )
    parser.add_argument("--json", type=Path, help="where to write the results (JSON)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    options = parser.parse_args(argv)

    registry = os.environ.get("CROSSDOCK_STAGE_REGISTRY", "127.0.0.1:5555")
    mirrors = Mirrors.parse(os.environ.get("CROSSDOCK_REGISTRY_MIRRORS", ""))
    cache_root = Path(os.environ.get("CROSSDOCK_CACHE_DIR") or default_cache_dir())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    json_path = options.json or cache_root / "bench" / f"bench-{stamp}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="crossdock-bench-"))
    log = json_path.with_suffix(".log")
    bench = Bench(work, log, registry, mirrors)
    repository = f"{registry}/bench/{SERVICE}-{stamp}"
    started = time.perf_counter()
    bench.facts["machine"] = machine()
    bench.facts["notes"] = [
        (
            "cold = a fresh CROSSDOCK_CACHE_DIR; uv's own wheel cache (UV_CACHE_DIR) stays warm "
            "except in the 'uv cold' run"
        ),
        (
            "crossdock runs are started as `python -c <wrapper> ...` in the development venv, "
            "so the wall time includes interpreter start and imports"
        ),
        (
            "buildx: Dockerfile.apprunner with crossdock's rendered buildx arguments, --load "
            "into dockerd; cold = `docker buildx prune -af` + --no-cache (base images come from "
            "the loopback registry either way)"
        ),
    ]
    try:
        run_scenarios(bench, options, repository, stamp)
    finally:
        bench.facts["total_seconds"] = round(time.perf_counter() - started, 1)
        bench.facts["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result = {
            "facts": bench.facts,
            "runs": [asdict(run) for run in bench.runs],
        }
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        print(render(bench.runs, bench.facts))
        print(f"\nmachine: {json.dumps(bench.facts['machine'])}")
        print(f"results: {json_path}\nlog: {log}")
        if options.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [run.label for run in bench.runs if run.exit_code != 0]
    if failed:
        print(f"failed runs: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
