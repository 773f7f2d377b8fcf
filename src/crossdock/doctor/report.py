"""What ``crossdock doctor`` found: one finding per check, each problem with its fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["DoctorFinding", "DoctorReport", "Status"]


class Status(StrEnum):
    OK = "ok"
    INFO = "info"
    # Only the Dockerfile route (buildx) is affected: the native backend works regardless.
    WARN = "warn"
    # crossdock itself cannot build or push as configured.
    FAIL = "fail"


@dataclass(frozen=True)
class DoctorFinding:
    check: str
    status: Status
    summary: str
    fix: str | None = None
    # True when the native backend does not need what this check is about (docker, QEMU...).
    native_avoids: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": str(self.status),
            "summary": self.summary,
            "fix": self.fix,
            "native_avoids": self.native_avoids,
            "details": self.details,
        }


_STYLE = {Status.OK: "green", Status.INFO: "cyan", Status.WARN: "yellow", Status.FAIL: "red"}


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[DoctorFinding, ...]

    @property
    def ok(self) -> bool:
        return all(f.status is not Status.FAIL for f in self.findings)

    def by_check(self, check: str) -> list[DoctorFinding]:
        return [f for f in self.findings if f.check == check]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [f.to_json() for f in self.findings]}

    def render(self, console: Console) -> None:
        table = Table(title="crossdock doctor", title_justify="left", show_lines=True)
        table.add_column("check")
        table.add_column("status")
        table.add_column("finding, and what to do", overflow="fold")
        for finding in self.findings:
            text = finding.summary
            if finding.fix:
                text += f"\n[bold]fix:[/] {finding.fix}"
            if finding.native_avoids and finding.status in (Status.WARN, Status.FAIL):
                text += (
                    "\n[dim]the native backend (crossdock build) avoids this: no daemon, no QEMU[/]"
                )
            style = _STYLE[finding.status]
            table.add_row(finding.check, f"[{style}]{finding.status}[/]", text)
        console.print(table)
