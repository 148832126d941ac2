"""``facesearch verify``: the data directory checked in full
(``application.indexing.check_data_dir``)."""

from __future__ import annotations

import json

import click

from facesearch.cli.common import CONFIG_OPTION, DATA_DIR_OPTION, cli_settings, echo

NO_CHECKSUMS = "no checksums recorded (published before them); the next index run records them"


@click.command()
@DATA_DIR_OPTION
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify(data_dir, config_file, as_json) -> None:
    """Check every file of the published index against the checksums in its
    manifest (each hashed in full) and SQLite's quick_check of the metadata
    and annotations databases. Exit status 0 when all hold; 1 naming each
    damaged file and what to run."""
    from application.indexing import check_data_dir

    settings = cli_settings(config_file, data_dir=data_dir)
    report = check_data_dir(settings.data_dir)
    if as_json:
        echo(json.dumps(report.to_dict()))
    else:
        _print(report)
    if not report.ok:
        raise SystemExit(1)


def _print(report) -> None:
    where = f"generation {report.generation}" if report.generation else "the index (first layout)"
    if report.checksums_recorded:
        echo(f"{where} in {report.data_dir}: {len(report.files_checked)} files checked against their checksums "
                   f"({report.hashed_bytes / 1e6:,.1f} MB hashed)")
    else:
        echo(f"{where} in {report.data_dir}: {NO_CHECKSUMS}")
    if report.databases_checked:
        echo(f"SQLite quick_check: {', '.join(report.databases_checked)}")
    for damage in report.damaged:
        echo(f"damaged: {damage.path}: {damage.problem}")
    for fix in report.fixes:
        echo(f"to fix: {fix}")
    echo(f"{'all intact' if report.ok else f'{len(report.damaged)} damaged'} ({report.duration_s:.1f} s)")
