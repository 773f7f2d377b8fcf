"""``crossdock doctor``: is this machine ready to build and push what the project configures?

Public API: ``run_doctor(DoctorInput, HostEnv) -> DoctorReport``; ``HostEnv`` injects every
outside fact (docker command, PATH, binfmt_misc folder, machine), so the checks run in tests with
QEMU on and off and without docker.
"""

from crossdock.doctor.checks import DoctorInput, check_binfmt, check_docker, check_host, run_doctor
from crossdock.doctor.inputs import doctor_input
from crossdock.doctor.probes import HostEnv, parse_binfmt_entry, parse_buildx_ls
from crossdock.doctor.report import DoctorFinding, DoctorReport, Status

__all__ = [
    "DoctorFinding",
    "DoctorInput",
    "DoctorReport",
    "HostEnv",
    "Status",
    "check_binfmt",
    "check_docker",
    "check_host",
    "doctor_input",
    "parse_binfmt_entry",
    "parse_buildx_ls",
    "run_doctor",
]
