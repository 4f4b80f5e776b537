"""Local stubs of pyarrow.csv 26 (pyarrow/_csv.pyx): read_csv and its three option classes."""

import os
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Literal, NamedTuple

from pyarrow import DataType, MemoryPool, NativeFile, Schema, Table

class InvalidRow(NamedTuple):
    """What ParseOptions' invalid_row_handler is given for a row with the wrong number of columns."""

    expected_columns: int
    actual_columns: int
    number: int | None
    text: str

class ReadOptions:
    def __init__(
        self,
        *,
        use_threads: bool | None = None,
        block_size: int | None = None,
        skip_rows: int | None = None,
        skip_rows_after_names: int | None = None,
        column_names: Sequence[str] | None = None,
        autogenerate_column_names: bool | None = None,
        encoding: str = "utf8",
    ) -> None: ...

class ParseOptions:
    def __init__(
        self,
        *,
        delimiter: str | None = None,
        quote_char: str | Literal[False] | None = None,
        double_quote: bool | None = None,
        escape_char: str | Literal[False] | None = None,
        newlines_in_values: bool | None = None,
        ignore_empty_lines: bool | None = None,
        invalid_row_handler: Callable[[InvalidRow], Literal["skip", "error"]] | None = None,
    ) -> None: ...

class ConvertOptions:
    def __init__(
        self,
        *,
        check_utf8: bool | None = None,
        column_types: Schema | Mapping[str, DataType] | None = None,
        default_column_type: DataType | None = None,
        null_values: Sequence[str] | None = None,
        true_values: Sequence[str] | None = None,
        false_values: Sequence[str] | None = None,
        decimal_point: str | None = None,
        strings_can_be_null: bool | None = None,
        quoted_strings_can_be_null: bool | None = None,
        include_columns: Sequence[str] | None = None,
        include_missing_columns: bool | None = None,
        auto_dict_encode: bool | None = None,
        auto_dict_max_cardinality: int | None = None,
        timestamp_parsers: Sequence[str] | None = None,
    ) -> None: ...

def read_csv(
    input_file: str | os.PathLike[str] | NativeFile | IO[bytes],
    read_options: ReadOptions | None = None,
    parse_options: ParseOptions | None = None,
    convert_options: ConvertOptions | None = None,
    memory_pool: MemoryPool | None = None,
) -> Table: ...
