"""What an analyst opens in a spreadsheet runs nothing."""

import csv
import io

import pytest

from services.reporting.api import as_csv

FORMULAS = ["=HYPERLINK(\"http://x.example\",\"open\")", "+1+cmd|' /C calc'!A0", "-2+3",
            "@SUM(A1:A9)", "\tTab", "\rReturn"]  # fmt: skip


@pytest.mark.parametrize("department", FORMULAS)
def test_a_text_a_spreadsheet_would_run_is_quoted(department: str) -> None:
    row = {"period": "2026-03", "department": department, "cases_opened": 12, "suppressed": False}
    (line,) = csv.DictReader(io.StringIO(as_csv([row], ["period", "department"])))
    assert line["department"] == f"'{department}"
    assert line["cases_opened"] == "12"


def test_ordinary_texts_are_left_as_they_are() -> None:
    row = {"period": "2026-03", "department": "ICU", "cases_opened": 12, "suppressed": False}
    (line,) = csv.DictReader(io.StringIO(as_csv([row], ["period", "department"])))
    assert (line["period"], line["department"]) == ("2026-03", "ICU")
