"""The settings reference, generated from the models of ``config.settings``
(where each default and its meaning is written once):

- ``config/default.toml``: every setting with its default, under its
  description as a comment; a file to copy and edit (``--config``);
- the settings table of ``docs/configuration.md``, between its
  ``<!-- settings -->`` markers.

``python -m config.reference`` (``make docs``) writes both;
``tests/unit/test_settings.py`` fails when either differs from what the models
say, so neither can go stale.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TOML = ROOT / "config" / "default.toml"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"
TABLE_START, TABLE_END = "<!-- settings -->", "<!-- /settings -->"
WIDTH = 78

HEADER = """\
facesearch's settings with their defaults, generated from config/settings.py
(`make docs`): edit that file, not this one. To change a setting, copy what
you need into a file of your own and give it with --config FILE (or
FACESEARCH_CONFIG), or set environment variables (FACESEARCH_DATA_DIR,
FACESEARCH_DETECTION__UPSAMPLE=0, ...), or CLI flags, in that rising order.
"""


def default_toml() -> str:
    """``config/default.toml`` as the models say it."""
    lines = _comment(HEADER)
    groups = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            groups.append((name, default))
            continue
        lines += ["", *_comment(field.description or ""), f"{name} = {_toml(default)}"]
    for name, group in groups:
        lines += ["", f"[{name}]", *_comment(_docstring(type(group))), ""]
        for key, field in type(group).model_fields.items():
            lines += [*_comment(field.description or ""), f"{key} = {_toml(getattr(group, key))}"]
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    """The markdown table of every setting: name, environment variable,
    default, meaning."""
    rows = ["| setting | environment | default | what |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            for key, sub in type(default).model_fields.items():
                rows.append(_row(f"{name}.{key}", f"FACESEARCH_{name.upper()}__{key.upper()}",
                                 getattr(default, key), sub.description or ""))
        else:
            rows.append(_row(name, f"FACESEARCH_{name.upper()}", default, field.description or ""))
    return "\n".join(rows) + "\n"


def configuration_doc(current: str) -> str:
    """``docs/configuration.md`` (``current``) with its table regenerated."""
    start, end = current.index(TABLE_START) + len(TABLE_START), current.index(TABLE_END)
    return current[:start] + "\n" + settings_table() + current[end:]


def _row(name: str, env: str, default: Any, description: str) -> str:
    text = description.replace("|", "\\|")
    return f"| `{name}` | `{env}` | `{_toml(default)}` | {text} |"


def _toml(value: Any) -> str:
    """``value`` as TOML (the subset settings use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def _comment(text: str) -> list[str]:
    return [f"# {line}".rstrip() for paragraph in text.strip().split("\n\n") if paragraph
            for line in textwrap.wrap(" ".join(paragraph.split()), WIDTH - 2)]


def _docstring(cls: type) -> str:
    """A model's docstring as plain text (reStructuredText's double backquotes made single)."""
    return (cls.__doc__ or "").replace("``", "`")


def main() -> None:
    """Write ``config/default.toml`` and the table of ``docs/configuration.md``."""
    DEFAULT_TOML.write_text(default_toml())
    CONFIGURATION_DOC.write_text(configuration_doc(CONFIGURATION_DOC.read_text()))
    print(f"wrote {DEFAULT_TOML.relative_to(ROOT)} and the settings table of {CONFIGURATION_DOC.relative_to(ROOT)}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
