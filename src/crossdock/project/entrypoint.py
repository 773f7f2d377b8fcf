"""How a web service's image starts, from what its project says, in this order:

1. ``[tool.crossdock] command``: the argv, as given;
2. ``app``: ``module:attribute`` served by ``server`` (uvicorn for an ASGI app, the default;
   gunicorn or waitress for a WSGI app, when the user names one);
3. the project's only ``[project.scripts]`` entry (packaged projects: uv installs scripts only
   for those);
4. otherwise a ConfigError that lists the choices.

Lambda images do not use this: the Lambda handler (``lambda-handler``) is their entrypoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crossdock.errors import ConfigError

__all__ = [
    "SERVERS",
    "AppServer",
    "Command",
    "ConsoleScript",
    "Entrypoint",
    "ServedApp",
    "choose_entrypoint",
]


@dataclass(frozen=True)
class AppServer:
    """A server run as ``python -m MODULE``: ``args`` with ``{app}``, ``{host}`` and ``{port}``."""

    module: str
    interface: str  # "ASGI" or "WSGI": what kind of app it serves
    args: tuple[str, ...]

    def argv(self, app: str, port: int) -> tuple[str, ...]:
        # A server in a container listens on every interface, or nothing outside reaches it.
        values = {"app": app, "host": "0.0.0.0", "port": str(port)}  # noqa: S104
        return ("-m", self.module, *(a.format(**values) for a in self.args))


SERVERS: Mapping[str, AppServer] = {
    "uvicorn": AppServer("uvicorn", "ASGI", ("{app}", "--host", "{host}", "--port", "{port}")),
    "gunicorn": AppServer("gunicorn", "WSGI", ("--bind", "{host}:{port}", "{app}")),
    "waitress": AppServer("waitress", "WSGI", ("--listen={host}:{port}", "{app}")),
}


@dataclass(frozen=True)
class Command:
    """``[tool.crossdock] command``: run as given."""

    argv: tuple[str, ...]


@dataclass(frozen=True)
class ServedApp:
    """An ASGI/WSGI application object served by ``server``."""

    app: str
    server: AppServer


@dataclass(frozen=True)
class ConsoleScript:
    """One of the project's console scripts, installed in the image's scripts folder."""

    name: str
    target: str  # module:function, from [project.scripts]


Entrypoint = Command | ServedApp | ConsoleScript


def choose_entrypoint(
    *,
    service: str,
    command: tuple[str, ...] | None,
    app: str | None,
    server: str,
    scripts: Mapping[str, str],
    packaged: bool,
) -> Entrypoint:
    """The entrypoint of ``service`` (see the module's docstring)."""
    if command:
        return Command(tuple(command))
    if app:
        try:
            return ServedApp(app, SERVERS[server])
        except KeyError:
            raise ConfigError(
                f"service {service!r}: unknown server {server!r} for app {app!r}",
                hint=f"server is one of: {', '.join(sorted(SERVERS))}",
            ) from None
    if packaged and len(scripts) == 1:
        ((name, target),) = scripts.items()
        return ConsoleScript(name, target)
    choices = [
        '[tool.crossdock] command = ["ARG", ...] (the argv to run)',
        (
            '[tool.crossdock] app = "module:app" (an ASGI app, served by uvicorn; '
            'server = "gunicorn" or "waitress" for a WSGI app)'
        ),
    ]
    if not scripts:
        choices.append("one [project.scripts] entry in a packaged project")
        found = "it has no command, no app and no console script"
    elif not packaged:
        choices.append(
            "a [build-system] (and no tool.uv.package = false), so that its console script is "
            "installed"
        )
        found = (
            f"its console scripts ({', '.join(sorted(scripts))}) are not installed: the project "
            "is not a package"
        )
    else:
        found = f"it has {len(scripts)} console scripts ({', '.join(sorted(scripts))})"
        choices.append('command = ["SCRIPT"] naming the one to run')
    raise ConfigError(
        f"service {service!r} does not say how it starts: {found}",
        hint="set one of: " + "; ".join(choices),
    )
