"""`pokewatch evaluate` on real singles: the flags for short histories and held-out sets,
`--json` for scripts and the `--by` breakdowns."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from tests.model.test_singles import SINGLES

runner = CliRunner()


def test_evaluate_prints_json_and_a_breakdown_by_set(write_config: Path) -> None:
    arguments = [
        "evaluate",
        *("--data", str(SINGLES)),
        *("--strategy", "last"),
        *("--min-history-days", "7", "--refit-every-days", "7"),
        *("--held-out-sets", "0.5"),
        *("--by", "set"),
        "--json",
    ]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    decoder = json.JSONDecoder()
    text = result.stdout.strip()
    comparison, end = decoder.raw_decode(text)
    breakdown = json.loads(text[end:])
    metrics = comparison["strategies"]["last"]["metrics"]
    assert comparison["horizon"] == 7
    assert metrics["mape_ratio_to_naive"] == 1.0  # `last` is the naive forecast
    assert {row["signal"] for row in comparison["strategies"]["last"]["signals"]} >= {"HOLD"}
    assert sum(row["rows"] for row in breakdown) == metrics["rows"]
    assert len({row["set"] for row in breakdown}) < 4  # only the held-out sets are scored


def test_evaluate_rejects_an_unknown_breakdown(write_config: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--data", str(SINGLES), "--by", "rarity"])
    assert result.exit_code == 2
    assert "rarity" in result.output
