"""Command-line options made from pydantic models: one decorator per model.

`@model_options(Resources, "resources")` adds one click option per field that names a flag
(`Field(json_schema_extra={"flag": "--cpus"})`), with the field's description as help text, its
default, and a click type read from its annotation and constraints (`ge`/`le` become ranges,
`Literal` a choice, `bool` a flag). Other extras: `path` (click.Path's checks, e.g.
`{"exists": True}`), `metavar`, `short` (a one-letter alias) and `cli_default` (a command-line
default other than the model's). The command then receives one validated model instance under
`resources` instead of the loose values, so adding an option is adding one field and its flag.
A value the model rejects is bad input: click's usage error, exit 2.
"""

from __future__ import annotations

import functools
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import annotated_types
import click
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from executor.cli.jobfile import file_value_error

PLAIN_DEFAULTS = (str, int, float, bool, Path, type(None))


def _extra(field: FieldInfo) -> dict:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def flag_of(field: FieldInfo) -> str | None:
    flag = _extra(field).get("flag")
    return flag if isinstance(flag, str) else None


def _bare(annotation: Any) -> Any:
    """`int | None` -> int; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def click_type(field: FieldInfo) -> Any:
    """The click type of a field: ranges from ge/gt/le/lt, Literal as a choice."""
    base = _bare(field.annotation)
    if typing.get_origin(base) is Literal:
        return click.Choice([str(v) for v in typing.get_args(base)])
    bounds: dict[str, Any] = {}
    if "min" in _extra(field):  # the flag is stricter than the model (e.g. --trials >= 2)
        bounds["min"] = _extra(field)["min"]
    for item in field.metadata:
        for name, attr in (("min", "ge"), ("min", "gt"), ("max", "le"), ("max", "lt")):
            if name not in bounds and isinstance(item, getattr(annotated_types, attr.capitalize())):
                bounds[name] = getattr(item, attr)
                if attr in ("gt", "lt"):
                    bounds[f"{name}_open"] = True
    if base is int:
        return click.IntRange(**bounds) if bounds else int
    if base is float:
        return click.FloatRange(**bounds) if bounds else float
    if base is Path:  # `path` extra: click.Path's checks, e.g. {"exists": True, "dir_okay": False}
        return click.Path(path_type=Path, **_extra(field).get("path", {}))
    return str  # str, and models that validate their text form (e.g. GpuRequest)


def _cli_default(field: FieldInfo) -> Any:
    if "cli_default" in _extra(field):  # e.g. None: "not given" means something to the model
        return _extra(field)["cli_default"]
    default = field.get_default(call_default_factory=True)
    return default if isinstance(default, PLAIN_DEFAULTS) else str(default)


def model_options(model: type[BaseModel], param: str, *,
                  only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                  defaults: dict[str, Any] | None = None,
                  headings: dict[str, str] | None = None) -> Callable[[Callable], Callable]:
    """Decorator: the flagged fields of `model` as click options; the command gets `param`.
    `defaults`: this command's own defaults for some fields (shown in --help, passed on);
    `headings`: field -> the --help heading (and job-file table) of its option."""
    wanted = set(only) if only is not None else None
    fields = [(name, field) for name, field in model.model_fields.items()
              if flag_of(field) and name not in set(exclude)
              and (wanted is None or name in wanted)]

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            # A flag left unset (None) is not passed: the model's default applies and the
            # model can tell given from defaulted (model_fields_set).
            values = {name: value for name, _ in fields
                      if (value := kwargs.pop(name)) is not None}
            try:
                kwargs[param] = model(**values)
            except ValidationError as exc:
                error = exc.errors()[0]
                message = error["msg"].removeprefix("Value error, ")
                if error["loc"] and str(error["loc"][0]) in dict(fields):  # one flag's value
                    name = str(error["loc"][0])
                    from_file = file_value_error(name, message)  # a job file's: name the key
                    if from_file is not None:
                        raise from_file from exc
                    message = f"{flag_of(dict(fields)[name])}: {message}"
                raise click.UsageError(message) from exc
            return command(*args, **kwargs)

        for name, field in reversed(fields):
            flag = flag_of(field)
            default = (defaults or {}).get(name, _cli_default(field))
            decls = [d for d in (_extra(field).get("short"), flag, name) if d]  # e.g. -v
            if _bare(field.annotation) is bool:
                # "--x" is an on-switch; "--x/--no-x" names both sides
                option = click.option(*decls, is_flag=True, default=default,
                                      show_default="/" in flag, help=field.description)
            else:
                option = click.option(*decls, type=click_type(field), default=default,
                                      show_default=default is not None,
                                      metavar=_extra(field).get("metavar"),
                                      help=field.description)
            wrapper = option(wrapper)
            made = wrapper.__click_params__[-1]  # the click.Option just made
            made.path_or_url = bool(_extra(field).get("path_or_url"))
            if headings and name in headings:
                made.help_group = headings[name]
        return wrapper

    return decorate
