"""What every ``facesearch`` command shares: the data directory and config
options, settings loaded with a usage error for a bad one, and output that
a name or a file name cannot turn into terminal commands (``echo``)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import click

from config.settings import Settings, load_settings
from indexer.store import FaceStore, StoreError, open_published
from indexer.store.annotations import AnnotationsDB
from indexer.store.corrections import TEXT_DIRECTION_CONTROLS

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


def open_index(settings: Settings) -> tuple[Path, FaceStore, AnnotationsDB]:
    """The data directory, its published index (read-only) and its
    annotations; a missing or damaged index is a clear error. Close both."""
    root = Path(settings.data_dir).expanduser().resolve()
    try:
        store = open_published(root, settings)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        return root, store, AnnotationsDB.open(root)
    except StoreError as exc:
        store.close()
        raise click.ClickException(str(exc)) from None


def printable(text: str) -> str:
    """``text`` with every control character (terminal escapes, NUL,
    newlines), line separator and text-direction control written as an
    escape (``\\u001b``, ``\\u202e``): a name or file name prints as what it
    holds, and cannot move the cursor, retitle the terminal or reorder the
    line. A ``\\uXXXX`` escape inside a JSON string is still the same JSON."""
    return "".join(_escaped(c) if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in TEXT_DIRECTION_CONTROLS
                   else c for c in text)


def _escaped(char: str) -> str:
    return f"\\u{ord(char):04x}"


def echo(text: str = "", **kwargs) -> None:
    """``click.echo`` of ``printable(text)``: every command prints through it."""
    click.echo(printable(str(text)), **kwargs)
