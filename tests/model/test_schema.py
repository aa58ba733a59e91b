from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.data import BUNDLED_PRICES, load_prices, read_price_file
from model.schema import (
    COLUMNS,
    PPT_SOURCE,
    REQUIRED_COLUMNS,
    TCGPLAYER_SOURCE,
    SchemaError,
    normalize_known_format,
    tcgplayer_item_id,
    validate_prices,
)


def row(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "item_id": "ok-1",
        "date": "2024-01-01",
        "market_price": 1.5,
        "name": "Card",
        "source": "test",
    }
    return {**base, **overrides}


def rows(*records: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(records))


BAD_ROWS = [
    (row(item_id=None), "missing item_id"),
    (row(item_id="   "), "missing item_id"),
    (row(item_id="bad id"), "malformed item_id"),
    (row(item_id="-leading-dash"), "malformed item_id"),
    (row(item_id="x" * 129), "malformed item_id"),
    (row(date="not a date"), "unparseable date"),
    (row(date="2024-02-30"), "unparseable date"),
    (row(date=None), "unparseable date"),
    (row(market_price=None), "missing market_price"),
    (row(market_price="abc"), "market_price not a number"),
    (row(market_price=0.0), "market_price not a positive number"),
    (row(market_price=-3.0), "market_price not a positive number"),
    (row(market_price=np.inf), "market_price not a positive number"),
    (row(market_price=-np.inf), "market_price not a positive number"),
    (row(name=None), "missing name"),
    (row(name="  "), "missing name"),
    (row(source=None), "missing source"),
    (row(source=""), "missing source"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_ROWS)
def test_validate_rejects_bad_row_with_reason(bad: dict[str, object], reason: str) -> None:
    good = row(item_id="good", date="2024-01-02")
    result = validate_prices(rows(good, bad))

    assert result.valid["item_id"].tolist() == ["good"]
    assert len(result.rejected) == 1
    assert result.rejected["reason"].tolist() == [reason]
    assert result.summary() == f"1 of 2 rows valid; rejected 1 ({reason}: 1)"


def test_validate_counts_reasons_and_keeps_rejected_values() -> None:
    frame = rows(
        row(item_id="a", date="2024-01-01", market_price=1.0),
        row(item_id="a", date="2024-01-02", market_price=0.0),
        row(item_id="b", date="2024-01-01", market_price=-1.0),
        row(item_id="b", date="garbage"),
        row(item_id="c", date="2024-01-01", market_price=2.0),
    )
    result = validate_prices(frame)

    assert result.valid["item_id"].tolist() == ["a", "c"]
    assert result.rejected["reason"].value_counts().to_dict() == {
        "market_price not a positive number": 2,
        "unparseable date": 1,
    }
    # Rejected rows keep their original values for inspection.
    assert result.rejected["date"].tolist() == ["2024-01-02", "2024-01-01", "garbage"]
    assert result.rejected["market_price"].tolist()[:2] == [0.0, -1.0]
    assert result.summary() == (
        "2 of 5 rows valid; rejected 3 (market_price not a positive number: 2, unparseable date: 1)"
    )


def test_first_failing_check_is_the_reason() -> None:
    # Missing item id and a bad price: the item id is checked first.
    result = validate_prices(rows(row(item_id=None, market_price=-1.0)))
    assert result.rejected["reason"].tolist() == ["missing item_id"]


def test_duplicate_item_and_day_keeps_the_first() -> None:
    frame = rows(
        row(item_id="a", date="2024-01-01", market_price=10.0),
        row(item_id="a", date="2024-01-01 15:30", market_price=20.0),
        row(item_id="a", date="2024-01-02", market_price=30.0),
        row(item_id="b", date="2024-01-01", market_price=40.0),
    )
    result = validate_prices(frame)

    assert result.valid[["item_id", "market_price"]].values.tolist() == [
        ["a", 10.0],
        ["a", 30.0],
        ["b", 40.0],
    ]
    assert result.rejected["market_price"].tolist() == [20.0]
    assert result.rejected["reason"].tolist() == ["duplicate item_id and date"]


def test_duplicate_of_an_invalid_row_is_kept() -> None:
    # The first row is rejected for its price, so the second is not a duplicate of anything valid.
    frame = rows(
        row(item_id="a", market_price=0.0),
        row(item_id="a", market_price=5.0),
    )
    result = validate_prices(frame)
    assert result.valid["market_price"].tolist() == [5.0]
    assert result.rejected["reason"].tolist() == ["market_price not a positive number"]


def test_valid_rows_are_coerced_sorted_and_complete() -> None:
    frame = rows(
        row(item_id=" b ", date="2024-01-03", market_price="2.5", name=" Beta "),
        row(item_id="a", date="2024-01-02T13:45:00", market_price=1, low_price=-1.0),
        row(item_id="a", date="2024-01-01", market_price=3.0, low_price=0.5),
    )
    result = validate_prices(frame)
    valid = result.valid

    assert list(valid.columns) == list(COLUMNS)
    assert valid["item_id"].tolist() == ["a", "a", "b"]
    assert valid["date"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-03"),
    ]
    assert valid["market_price"].tolist() == [3.0, 1.0, 2.5]
    assert valid["name"].tolist()[-1] == "Beta"
    # Optional prices that are not positive become NaN rather than rejecting the row.
    assert valid["low_price"].iloc[0] == 0.5
    assert np.isnan(valid["low_price"].iloc[1])
    assert valid["set_code"].isna().all()
    assert result.summary() == "3 of 3 rows valid"


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_required_column_raises_naming_it(column: str) -> None:
    frame = rows(row()).drop(columns=[column])
    with pytest.raises(SchemaError, match=rf"\['{column}'\]"):
        validate_prices(frame)


def test_summary_without_rejections() -> None:
    assert validate_prices(rows(row())).summary() == "1 of 1 rows valid"


def test_one_timezone_aware_date_does_not_fail_the_whole_frame() -> None:
    frame = rows(
        row(item_id="a", date="2024-01-01"),
        row(item_id="b", date="2024-01-01T00:00:00+05:00"),
    )
    result = validate_prices(frame)
    assert len(result.valid) + len(result.rejected) == 2


def test_tcgplayer_item_id_scheme() -> None:
    assert tcgplayer_item_id(12345) == "tcg-12345"
    assert tcgplayer_item_id(12345, "Normal") == "tcg-12345"
    assert tcgplayer_item_id(12345, "Reverse Holofoil") == "tcg-12345-reverse-holofoil"
    assert tcgplayer_item_id(7, "1st Edition Holofoil!") == "tcg-7-1st-edition-holofoil"


def test_normalize_raw_schema_is_unchanged() -> None:
    frame = rows(row())
    assert normalize_known_format(frame) is frame


def test_normalize_tcgplayer_sealed_without_catalog() -> None:
    sealed = pd.DataFrame(
        {
            "date": ["2024-01-01", "2024-01-02", "2024-01-01"],
            "product_id": [100, 100, 200],
            "market_price": [50.0, 51.0, 20.0],
        }
    )
    result = validate_prices(normalize_known_format(sealed))

    assert result.rejected.empty
    valid = result.valid
    assert valid["item_id"].tolist() == ["tcg-100", "tcg-100", "tcg-200"]
    assert valid["tcgplayer_id"].tolist() == ["100", "100", "200"]
    assert valid["source"].unique().tolist() == [TCGPLAYER_SOURCE]
    assert valid["name"].tolist() == [
        "TCGplayer product 100",
        "TCGplayer product 100",
        "TCGplayer product 200",
    ]
    assert valid["market_price"].tolist() == [50.0, 51.0, 20.0]


def test_normalize_tcgplayer_sealed_with_catalog() -> None:
    sealed = pd.DataFrame(
        {"date": ["2024-01-01", "2024-01-01"], "product_id": [100, 200], "market_price": [5.0, 6.0]}
    )
    products = pd.DataFrame({"product_id": [100], "name": ["Booster Box"], "set_code": ["sv1"]})
    valid = validate_prices(normalize_known_format(sealed, products)).valid

    assert valid["name"].tolist() == ["Booster Box", "TCGplayer product 200"]
    assert valid["set_code"].iloc[0] == "sv1"
    assert pd.isna(valid["set_code"].iloc[1])


def test_normalize_pokemonpricetracker_cards() -> None:
    cards = pd.DataFrame(
        {
            "card_id": ["sv2a_151_pikachu_025", "sv2a_151_mew_151"],
            "card_name": ["Pikachu", "Mew"],
            "card_number": ["025/165", "151/165"],
            "date": ["2024-01-01", "2024-01-02"],
            "market_price": [3.5, 10.0],
            "source": [PPT_SOURCE, PPT_SOURCE],
            "rarity": ["Common", "Rare"],
            "tcgplayer_id": ["11", "22"],
        }
    )
    result = validate_prices(normalize_known_format(cards))

    assert result.rejected.empty
    valid = result.valid.set_index("item_id")
    assert valid.loc["sv2a_151_pikachu_025", "name"] == "Pikachu"
    assert valid.loc["sv2a_151_pikachu_025", "number"] == "025/165"
    assert valid.loc["sv2a_151_mew_151", "set_code"] == "sv2a"
    assert valid.loc["sv2a_151_mew_151", "rarity"] == "Rare"
    assert valid.loc["sv2a_151_mew_151", "tcgplayer_id"] == "22"
    assert valid.loc["sv2a_151_mew_151", "market_price"] == 10.0


def test_normalize_unknown_format_raises() -> None:
    with pytest.raises(SchemaError, match="unrecognized price columns"):
        normalize_known_format(pd.DataFrame({"foo": [1], "bar": [2]}))


def test_load_bundled_sample() -> None:
    result = load_prices(BUNDLED_PRICES)
    valid = result.valid

    assert result.rejected.empty
    assert valid["item_id"].nunique() == 310
    assert valid.loc[valid["set_code"] == "sv2a", "item_id"].nunique() == 10
    assert (valid["market_price"] > 0).all()
    assert not valid.duplicated(["item_id", "date"]).any()
    assert result.summary() == f"{len(valid)} of {len(valid)} rows valid"


def test_load_csv(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    rows(
        row(item_id="007", date="2024-01-02", market_price=2.0),
        row(item_id="007", date="2024-01-01", market_price=1.0),
        row(item_id="x", date="2024-01-01", market_price=-5.0),
    ).to_csv(path, index=False)
    result = load_prices(path)

    # item_id is read as text: the leading zeros survive.
    assert result.valid["item_id"].tolist() == ["007", "007"]
    assert result.valid["market_price"].tolist() == [1.0, 2.0]
    assert result.rejected["reason"].tolist() == ["market_price not a positive number"]


def test_load_tcgplayer_csv_with_products_beside_it(tmp_path: Path) -> None:
    pd.DataFrame({"date": ["2024-01-01"], "product_id": [100], "market_price": [5.0]}).to_csv(
        tmp_path / "sealed.csv", index=False
    )
    pd.DataFrame({"product_id": [100], "name": ["Elite Trainer Box"], "set_code": ["sv3"]}).to_csv(
        tmp_path / "products.csv", index=False
    )
    valid = load_prices(tmp_path / "sealed.csv").valid
    assert valid["name"].tolist() == ["Elite Trainer Box"]
    assert valid["item_id"].tolist() == ["tcg-100"]


def test_read_price_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_price_file(tmp_path / "missing.csv")
    other = tmp_path / "prices.json"
    other.write_text("{}")
    with pytest.raises(SchemaError, match="unsupported price file type"):
        read_price_file(other)
