"""``facesearch serve``, ``facesearch new-key`` and ``facesearch hash-key``."""

from __future__ import annotations

import sys

import click

from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings


@click.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000).")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Server processes (0: one per core).")
@click.option("--insecure", is_flag=True,
              help="Allow binding to an address other than loopback with no API key configured.")
def serve(data_dir, config_file, host, port, workers, insecure) -> None:
    """Serve the HTTP API with gunicorn until stopped (Ctrl-C)."""
    from application.access import KeyConfigError, is_loopback, parse_keys
    from service.server import run_server
    from service.ui.security import SecretFileError

    service = {k: v for k, v in dict(host=host, port=port, workers=workers).items() if v is not None}
    settings = cli_settings(config_file, data_dir=data_dir, service=service)
    try:
        keys = parse_keys(settings.api_keys, settings.read_keys)
    except KeyConfigError as exc:
        raise click.UsageError(f"API keys: {exc}") from None  # exit status 2: the configuration is wrong
    if not keys and not is_loopback(settings.service.host):
        if not insecure:
            raise click.ClickException(
                f"refusing to serve faces on {settings.service.host} with no API key: anyone who can reach it could "
                "search for anyone. Configure keys (FACESEARCH_API_KEYS, see `facesearch hash-key`), bind to "
                "127.0.0.1, or pass --insecure."
            )
        click.echo(f"facesearch: WARNING: serving on {settings.service.host} with no API key (--insecure)", err=True)
    try:
        run_server(settings)
    except SecretFileError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("new-key")
def new_key() -> None:
    """Print a new random API key (256 bits) on stdout, and on stderr how
    to configure it. `KEY=$(facesearch new-key)` keeps it out of the terminal."""
    from application.access import hashed_form
    from application.access import new_key as make_key

    key = make_key()
    click.echo(key)
    click.echo(f"configure it as FACESEARCH_API_KEYS (admin) or FACESEARCH_READ_KEYS (read only), or put its "
               f"digest in the config file: {hashed_form(key)}", err=True)


@click.command("hash-key")
@click.argument("key", required=False)
@click.option("--new", "make_new", is_flag=True, help="Make a new random key and print it with its hashed form.")
def hash_key(key, make_new) -> None:
    """Print the form of an API key to put in a config file
    (`sha256:<hex>`), so that the file does not hold the key itself. The key
    is read from stdin when not given (keeps it out of the shell history)."""
    from application.access import KeyConfigError, check_strength, hashed_form, new_key

    if make_new:
        if key:
            raise click.UsageError("give a KEY or --new, not both")
        key = new_key()
        click.echo(f"key:    {key}")
        click.echo(f"config: {hashed_form(key)}")
        return
    if not key:
        key = sys.stdin.readline().strip()
    if not key:
        raise click.UsageError("give the key as an argument or on stdin")
    try:
        check_strength(key)
    except KeyConfigError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(hashed_form(key))
