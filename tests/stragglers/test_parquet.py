"""Reading Parquet traces: op-type codes from the column's dictionary, stored widths, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from heteroscale.stragglers.parquet_trace import read_parquet
from heteroscale.stragglers.trace import OP_CODE, TraceError
from tests.stragglers.conftest import DATA


def test_op_type_codes_come_from_the_dictionary() -> None:
    table = pq.read_table(DATA / "trace-SE.parquet")
    names = table.column("optype").cast(pa.string()).to_pylist()
    # The bundled dictionary also lists 'first-op', which no row uses: it is no error.
    assert "first-op" in table.column("optype").chunk(0).dictionary.to_pylist()
    trace = read_parquet(DATA / "trace-SE.parquet")
    assert trace.optype.dtype == np.int8
    assert trace.optype.tolist() == [OP_CODE[n] for n in names]


def test_columns_keep_their_stored_width() -> None:
    trace = read_parquet(DATA / "trace-AR.parquet")
    assert (trace.stage.dtype, trace.dp_rank.dtype, trace.rank.dtype) == (np.int8, np.int8, np.int16)
    assert (trace.start_ts.dtype, trace.duration.dtype) == (np.float32, np.float32)


def test_plain_string_op_types_read_as_well(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    plain = table.set_column(table.schema.get_field_index("optype"), "optype", table.column("optype").cast(pa.string()))
    pq.write_table(plain, tmp_path / "plain.parquet", use_dictionary=False)
    np.testing.assert_array_equal(
        read_parquet(tmp_path / "plain.parquet").optype, read_parquet(DATA / "trace-ST.parquet").optype
    )


def test_an_unknown_op_type_that_rows_use_is_named(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    names = table.column("optype").cast(pa.string()).to_numpy(zero_copy_only=False)
    names[3] = "data-load"
    column = pa.array(names).dictionary_encode()
    pq.write_table(table.set_column(table.schema.get_field_index("optype"), "optype", column), tmp_path / "t.parquet")
    with pytest.raises(TraceError, match=r"unknown op type\(s\): data-load; known: forward-compute"):
        read_parquet(tmp_path / "t.parquet")


def test_missing_columns_and_values_are_named(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    pq.write_table(table.drop_columns(["seq_id", "mb_id"]), tmp_path / "missing.parquet")
    with pytest.raises(TraceError, match=r"missing column\(s\): seq_id, mb_id"):
        read_parquet(tmp_path / "missing.parquet")
    stage = pa.array([None, *table.column("stage").to_pylist()[1:]], pa.int8())
    pq.write_table(table.set_column(table.schema.get_field_index("stage"), "stage", stage), tmp_path / "null.parquet")
    with pytest.raises(TraceError, match="trace column stage has 1 missing value"):
        read_parquet(tmp_path / "null.parquet")


def test_a_file_that_is_not_parquet_is_a_trace_error(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_text("dp_rank,stage\n0,0\n")
    with pytest.raises(TraceError, match="cannot read trace"):
        read_parquet(tmp_path / "t.parquet")
