"""A command group that imports a command's module only when that command is run.

Commands are declared by module with the summary that `isobench --help` lists, so the top
help and each command's own `--help` import nothing but the module of that command: most
command modules pull in Docker, SciPy, matplotlib or aiohttp, which take seconds to import.
Each module keeps its `register(group)`; loading one registers its commands on a scratch group
and keeps them. tests/unit/test_cli_startup.py checks the summaries against the commands.
"""

from __future__ import annotations

import importlib
from gettext import gettext as _

import click


class LazyCommand:
    """Where a command lives and the first paragraph of its help (what the listing shows)."""

    def __init__(self, module: str, summary: str):
        self.module, self.summary = module, summary


class LazyGroup(click.Group):
    """`lazy`: command name -> LazyCommand. Loaded commands are kept in `commands`."""

    def __init__(self, *args, lazy: dict[str, LazyCommand], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context | None, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            scratch = click.Group()
            importlib.import_module(self.lazy[name].module).register(scratch)
            self.commands.update(scratch.commands)
        return self.commands.get(name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand:
            # click suggests from the loaded commands only; suggest from all of them
            raise click.exceptions.NoSuchCommand(click.utils.make_str(args[0]),
                                                 possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, from the summaries: listing loads no command module."""
        listed = [(name, click.Command(name, help=self.lazy[name].summary))
                  for name in sorted(self.lazy) if name not in self.commands]
        listed += [(name, command) for name, command in self.commands.items()
                   if not command.hidden]
        listed.sort()
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _command in listed)
        with formatter.section(_("Commands")):
            formatter.write_dl([(name, command.get_short_help_str(limit))
                                for name, command in listed])
