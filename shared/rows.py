"""A file of rows (CSV) read whole and checked before anything is done with it: every row's
error by its line number, so that whoever prepared the file can fix all of them at once."""

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import BaseModel, ValidationError

from shared.errors import describe

Row = TypeVar("Row", bound=BaseModel)


def split_cell(value: object) -> object:
    """A cell holding a list, `;` between its items (lowercase codes)."""
    if isinstance(value, str):
        return [item.strip().lower() for item in value.split(";") if item.strip()]
    return value


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass(frozen=True)
class RowFile:
    """What a file of one kind must look like."""

    columns: Sequence[str]
    required: Sequence[str]
    key: str
    """The column no two rows may share."""
    empty: str
    """Why a file without rows is refused."""

    def parse(self, text: str, model: type[Row]) -> tuple[list[Row], list[RowError]]:
        """All rows, or every row's error by its line number in the file."""
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        if missing := [c for c in self.required if c not in header]:
            return [], [RowError(1, f"missing column(s): {', '.join(missing)}")]
        if unknown := [c for c in header if c not in self.columns]:
            return [], [RowError(1, f"unknown column(s): {', '.join(unknown)}")]
        rows: list[Row] = []
        errors: list[RowError] = []
        seen: dict[object, int] = {}
        for fields in reader:
            line = reader.line_num
            given = {k: v for k, v in fields.items() if v not in (None, "")}  # blank: default
            try:
                row = model.model_validate(given)
            except ValidationError as error:
                errors.append(RowError(line, describe(error)))
                continue
            key = getattr(row, self.key)
            if key in seen:
                errors.append(RowError(line, f"{self.key} {key} already on line {seen[key]}"))
                continue
            seen[key] = line
            rows.append(row)
        if not rows and not errors:
            errors.append(RowError(1, self.empty))
        return rows, errors


def rows_or_exit(path: Path, parse: Callable[[str], tuple[list[Row], list[RowError]]]) -> list[Row]:
    """A command's file: its rows, or every error on stderr and exit 1 with nothing done."""
    rows, errors = parse(path.read_text(encoding="utf-8-sig"))
    for error in errors:
        typer.echo(f"{path}:{error.line}: {error.reason}", err=True)
    if errors:
        typer.echo(f"{len(errors)} row error(s): nothing loaded", err=True)
        raise typer.Exit(1)
    return rows
