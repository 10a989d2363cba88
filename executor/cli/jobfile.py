"""Job files (`--config job.toml`) and the help grouped by concern, for `run`, `run-commit` and
`bench`.

Every option of these commands sits under one heading of its `--help` (`HEADINGS`, in that
order); a job file has one TOML table per heading, named like it in lower case with dashes
(`[agent]`, `[model-and-gateway]`, `[images]`, `[benchmark]`, `[resources]`, `[batch]`,
`[record]`), and in it the option's flag without its dashes (`max-trials`, or `max_trials`).
A switch takes true or false (`probe = false` is `--no-probe`). The file fills click's
`default_map`, so its values still pass through each option's type and the models'
validation, and a flag given on the command line wins. Relative paths in the file are relative
to the file's directory. Anything wrong in the file (unknown table or key, a key in the wrong
table, a wrong type, a value out of range) is one line naming the file, the key and why: exit 2.

`JobCommand.invoke` records what the command ran with (`CommandOptions`: the job file's path and
sha256, every option's resolved value as a job file writes it, and which came from the file and
which from the command line); the commands write it beside their other options.

This module imports nothing heavy: the commands' `--help` goes through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

HEADINGS = ("Agent", "Model and gateway", "Images", "Benchmark", "Resources", "Batch", "Record")
# ctx.meta keys: the loaded job file, and the resolved options the command records.
JOB_FILE_META = "isobench.job_file"
OPTIONS_META = "isobench.command_options"
# A value that is a URL or an scp-like git address (host:path) is not resolved against the file.
_URL = re.compile(r"^[A-Za-z][\w+.-]*://|^[^/]+:")


class JobFileError(click.ClickException):
    """A job file that cannot be used: one line, exit 2 like any bad input."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"isobench: error: {self.format_message()}", err=True, file=file)


def table_of(heading: str) -> str:
    """`Model and gateway` -> `model-and-gateway`: the job file's table of a heading."""
    return heading.lower().replace(" ", "-")


def _norm(key: str) -> str:
    return key.replace("_", "-")


def grouped(heading: str, *decorators: Callable) -> Callable[[Callable], Callable]:
    """Decorator: apply `decorators` (click options, model_options) and file the options they
    add under `heading` in --help and the job file (an option model_options already filed keeps
its heading)."""
    if heading not in HEADINGS:
        raise ValueError(f"unknown help heading {heading!r}")

    def decorate(fn: Callable) -> Callable:
        before = {id(param) for param in getattr(fn, "__click_params__", [])}
        for decorator in reversed(decorators):
            fn = decorator(fn)
        for param in getattr(fn, "__click_params__", []):
            if id(param) not in before and getattr(param, "help_group", None) is None:
                param.help_group = heading
        return fn

    return decorate


def job_key(param: click.Parameter) -> str:
    """The option's key in a job file: its first long flag without the dashes."""
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return (longs[0] if longs else param.opts[0]).lstrip("-")


def _filed(command: click.Command) -> dict[str, click.Option]:
    """table.key -> option, for every option of `command` filed under a heading."""
    return {f"{table_of(param.help_group)}.{_norm(job_key(param))}": param
            for param in command.params
            if isinstance(param, click.Option) and getattr(param, "help_group", None)}


def _describe(value: Any) -> str:
    return json.dumps(value, default=str)


def _check_toml_type(param: click.Option, value: Any) -> Any:
    """The TOML value as the option's type expects it, or a reason it is not."""
    kind = param.type
    if param.is_flag and param.is_bool_flag:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {_describe(value)}")
        return value
    if isinstance(value, (list, dict)):
        raise TypeError(f"expected one value, got {_describe(value)}")
    if isinstance(kind, click.types.IntParamType):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {_describe(value)}")
    elif isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {_describe(value)}")
    elif isinstance(value, bool):
        raise TypeError(f"expected text, got {_describe(value)}")
    elif isinstance(kind, click.Path) and not isinstance(value, str):
        raise TypeError(f"expected a path (text), got {_describe(value)}")
    elif not isinstance(value, (str, int, float)):  # e.g. a TOML date
        raise TypeError(f"expected text, got {_describe(value)}")
    return value


def _resolve_path(param: click.Option, value: Any, base: Path) -> Any:
    """Relative paths in a job file are relative to the file's directory."""
    is_path = isinstance(param.type, click.Path)
    if not (is_path or getattr(param, "path_or_url", False)) or not isinstance(value, str):
        return value
    if not is_path and _URL.match(value):
        return value
    path = Path(value).expanduser()
    return str(path) if path.is_absolute() else os.path.normpath(base / path)


def load_job_file(ctx: click.Context, path: Path) -> dict[str, Any]:
    """param name -> value from the job file at `path`, each checked against its option."""
    import tomllib

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JobFileError(f"--config {path}: {exc.strerror or exc}") from exc
    try:
        doc = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise JobFileError(f"{path}: not TOML: {exc}") from exc
    filed = _filed(ctx.command)
    tables = {table_of(h) for h in HEADINGS if any(
        k.startswith(table_of(h) + ".") for k in filed)}
    by_key: dict[str, list[str]] = {}
    for where in filed:
        table, key = where.split(".", 1)
        by_key.setdefault(key, []).append(table)
    command = ctx.command_path or ctx.info_name
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for table, entries in doc.items():
        if not isinstance(entries, dict):
            home = by_key.get(_norm(table))
            hint = (f" (put it in [{home[0]}])" if home else "")
            raise JobFileError(f"{path}: {table}: options go in tables named for the headings "
                               f"of --help ([{'], ['.join(sorted(tables))}]){hint}")
        if _norm(table) not in tables:
            raise JobFileError(f"{path}: [{table}]: not a table of `{command}` (its tables: "
                               f"[{'], ['.join(sorted(tables))}])")
        for key, value in entries.items():
            where = f"{_norm(table)}.{_norm(key)}"
            name = f"[{table}] {key}"
            if where not in filed:
                homes = by_key.get(_norm(key))
                raise JobFileError(f"{path}: {name}: " + (
                    f"not a {table} option; it goes in [{homes[0]}]" if homes
                    else f"unknown option of `{command}`"))
            if where in seen:
                raise JobFileError(f"{path}: {name}: given twice (also as {seen[where]})")
            seen[where] = name
            param = filed[where]
            try:
                value = _resolve_path(param, _check_toml_type(param, value), path.parent)
                values[param.name] = param.type_cast_value(ctx, value)
            except (TypeError, ValueError, click.BadParameter) as exc:
                message = exc.message if isinstance(exc, click.BadParameter) else exc
                raise JobFileError(f"{path}: {name}: {message}") from None
    ctx.meta[JOB_FILE_META] = {"path": path, "sha256": hashlib.sha256(data).hexdigest(),
                               "keys": {param.name: seen[w] for w, param in filed.items()
                                        if w in seen}}
    return values


def _load_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    path = value.expanduser().absolute()
    ctx.default_map = {**(ctx.default_map or {}), **load_job_file(ctx, path)}


def config_option(fn: Callable) -> Callable:
    """--config FILE: the job file (read first; flags given on the command line win)."""
    return click.option(
        "--config", type=click.Path(dir_okay=False, path_type=Path), is_eager=True,
        expose_value=False, callback=_load_config, metavar="FILE",
        help="Job file (TOML): options by table, [benchmark] max-trials = 10; flags given "
             "here win. See docs/job.example.toml.")(fn)


def file_value_error(name: str, message: str) -> JobFileError | None:
    """The error for a value the job file gave (param `name`) that a model rejected: naming
    the file and the key. None when the value did not come from a job file."""
    ctx = click.get_current_context(silent=True)
    job = ctx.meta.get(JOB_FILE_META) if ctx else None
    if not job or ctx.get_parameter_source(name) is not ParameterSource.DEFAULT_MAP:
        return None
    return JobFileError(f"{job['path']}: {job['keys'].get(name, name)}: {message}")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def resolved_options(ctx: click.Context) -> dict[str, Any]:
    """What the command runs with: the job file (path, sha256), every option's value by table
    and key as a job file writes them, and which came from the file and the command line."""
    values: dict[str, dict[str, Any]] = {table_of(heading): {} for heading in HEADINGS}
    sources: dict[str, list[str]] = {"from_file": [], "from_command_line": []}
    for param in ctx.command.params:
        heading = getattr(param, "help_group", None)
        if not heading or param.name not in ctx.params:
            continue
        table, key = table_of(heading), job_key(param)
        values[table][key] = _jsonable(ctx.params[param.name])
        source = ctx.get_parameter_source(param.name)
        if source is ParameterSource.DEFAULT_MAP:
            sources["from_file"].append(f"{table}.{key}")
        elif source is ParameterSource.COMMANDLINE:
            sources["from_command_line"].append(f"{table}.{key}")
    job = ctx.meta.get(JOB_FILE_META)
    return {"command": ctx.command_path, "config": str(job["path"]) if job else None,
            "config_sha256": job["sha256"] if job else None,
            "values": {table: keys for table, keys in values.items() if keys}, **sources}


def command_options() -> dict[str, Any] | None:
    """The resolved options of the command running now (None outside a JobCommand)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(OPTIONS_META) if ctx else None


class JobCommand(click.Command):
    """A command whose options come from flags or a job file: --help in sections by concern,
    and the resolved options kept for the records (`command_options()`)."""

    def invoke(self, ctx: click.Context) -> Any:
        ctx.meta[OPTIONS_META] = resolved_options(ctx)
        return super().invoke(ctx)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str | None, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):  # arguments are in the usage line
                continue
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(getattr(param, "help_group", None), []).append(record)
        for heading in (None, *HEADINGS):
            if sections.get(heading):
                with formatter.section(heading or "Options"):
                    formatter.write_dl(sections[heading])
