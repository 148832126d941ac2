"""What every ``facesearch`` command shares: the data directory and config
options, settings loaded with a usage error for a bad one, the errors of
the application said one way (``FacesearchGroup``), and output that a name
or a file name cannot turn into terminal commands (``echo``)."""

from __future__ import annotations

from pathlib import Path

import click

from application.errors import InvalidRequest, user_errors
from application.runtime import Runtime
from application.text import printable
from config.settings import Settings, load_settings

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="TOML file of settings over the defaults (else $FACESEARCH_CONFIG; config/default.toml lists them all).",
)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Index directory (else $FACESEARCH_DATA_DIR, else the config file).",
)


def cli_settings(config_file: Path | None, **overrides) -> Settings:
    """The settings (``load_settings``), a missing file or a bad value being a usage error."""
    try:
        return load_settings(config_file, **overrides)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError
        raise click.UsageError(f"invalid setting: {exc}") from None


class FacesearchGroup(click.Group):
    """The ``facesearch`` group: every command's errors of the application's
    table (``application.errors``) are said the same way: an option the
    settings or the index do not allow (``InvalidRequest``: a --k above the
    number of faces) is a usage error (exit status 2), any other an error
    (exit status 1), the message made printable."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except user_errors() as exc:
            message = printable(str(exc))
            if isinstance(exc, InvalidRequest):
                raise click.UsageError(message) from None
            raise click.ClickException(message) from None


def runtime() -> Runtime:
    """The command's ``Runtime`` (the context object: the real model unless
    the caller passed another, ``main(obj=Runtime(model=...))``)."""
    return click.get_current_context().ensure_object(Runtime)


def echo(text: str = "", **kwargs) -> None:
    """``click.echo`` of ``printable(text)``: every command prints through it."""
    click.echo(printable(str(text)), **kwargs)
