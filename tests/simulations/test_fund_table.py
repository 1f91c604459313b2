import csv
import io
import json
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import load_config, simulate
from fundmodel.simulations.fund_table import (
    ROWS_PER_CHUNK,
    csv_chunks,
    fund_table_columns,
    prefers_csv,
    write_fund_table,
)

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "fund.json").read_text(encoding="utf-8"))


def test_every_per_fund_value_round_trips_exactly_through_the_csv() -> None:
    result = simulate(load_config(EXAMPLE), iterations=ROWS_PER_CHUNK + 7, seed=4)
    stream = io.StringIO()
    write_fund_table(result, stream)
    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert rows[0] == fund_table_columns(result) == ["fund", *result.samples]
    assert len(rows) == ROWS_PER_CHUNK + 8
    for position, name in enumerate(rows[0][1:], start=1):
        column = np.array([float(row[position]) for row in rows[1:]])
        assert np.array_equal(column, result.samples[name])  # shortest round-trip repr: bit-exact
    assert [int(row[0]) for row in rows[1:]] == list(range(ROWS_PER_CHUNK + 7))


def test_the_table_streams_in_bounded_chunks() -> None:
    result = simulate(load_config(EXAMPLE), iterations=2 * ROWS_PER_CHUNK + 1, seed=4)
    chunks = list(csv_chunks(result))
    assert len(chunks) == 1 + 3  # the header, then two full chunks and one row
    assert [chunk.count("\n") for chunk in chunks] == [1, ROWS_PER_CHUNK, ROWS_PER_CHUNK, 1]


@given(st.text(alphabet=st.characters(blacklist_characters="tT"), max_size=60))
def test_without_text_csv_the_answer_stays_json(accept: str) -> None:
    assert not prefers_csv(accept)


def test_quality_values_decide() -> None:
    assert prefers_csv("text/csv")
    assert prefers_csv("TEXT/CSV; charset=utf-8")
    assert prefers_csv("application/json;q=0.1, text/csv;q=0.2")
    assert not prefers_csv("application/json, text/csv;q=0.5")
    assert not prefers_csv("text/csv;q=0")
    assert not prefers_csv("text/csv;q=nan")
    assert not prefers_csv("text/csv;q=bogus")
    assert not prefers_csv(None)
    assert not prefers_csv("")
