"""Local stubs of pyarrow 26: only the names archi3d (src, tests, bench) uses, with their real signatures.

Checked against the installed package with `python -m mypy.stubtest pyarrow --ignore-missing-stub`
(run outside the project, MYPYPATH=typings): what it still reports is by design (no `options=` on the
compute wrappers, no @disjoint_base, constructors declared from the .pyx sources rather than the
*args/**kwargs cython shows, Buffer.__buffer__ standing for the C buffer protocol).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.extensions import ExtensionDtype
from typing_extensions import Buffer as _SupportsBuffer

_MapsAsPydicts = Literal["lossy", "strict"] | None
# What `take` accepts as row indices: an integer array, or anything pyarrow turns into one.
_Indices: TypeAlias = "Array | ChunkedArray | Sequence[int] | npt.NDArray[np.integer[Any]]"

# --- errors (pyarrow/error.pxi) ----------------------------------------------------------------------

class ArrowException(Exception): ...
class ArrowInvalid(ValueError, ArrowException): ...

# --- types and memory (types.pxi, memory.pxi) ----------------------------------------------------------

class DataType:
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def string() -> DataType: ...
def int64() -> DataType: ...

class Schema:
    """Opaque here: only named in signatures (pa.table's `schema`, ConvertOptions' `column_types`)."""

class MemoryPool:
    def release_unused(self) -> None: ...

def default_memory_pool() -> MemoryPool: ...

# --- buffers and files (io.pxi) -----------------------------------------------------------------------

class Buffer:
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: slice, /) -> Buffer: ...
    @overload
    def __getitem__(self, key: int, /) -> int: ...
    def to_pybytes(self) -> bytes: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...  # the C buffer protocol, as typeshed spells it (PEP 688)

def py_buffer(obj: _SupportsBuffer) -> Buffer: ...

class NativeFile: ...

class BufferReader(NativeFile):
    def __init__(self, obj: _SupportsBuffer) -> None: ...

# --- scalars (scalar.pxi) -----------------------------------------------------------------------------

class Scalar:
    def as_py(self, *, maps_as_pydicts: _MapsAsPydicts = None) -> Any: ...  # the Python type follows the data type

class BooleanScalar(Scalar):
    def as_py(self, *, maps_as_pydicts: _MapsAsPydicts = None) -> bool | None: ...

# --- arrays and tables (array.pxi, table.pxi) ----------------------------------------------------------

class Array:
    def __len__(self) -> int: ...
    def buffers(self) -> list[Buffer | None]: ...
    def to_pylist(self, *, maps_as_pydicts: _MapsAsPydicts = None) -> list[Any]: ...
    def to_numpy(self, zero_copy_only: bool = True, writable: bool = False) -> npt.NDArray[Any]: ...

class ChunkedArray:
    def __len__(self) -> int: ...
    @property
    def chunks(self) -> list[Array]: ...
    def combine_chunks(self, memory_pool: MemoryPool | None = None) -> Array: ...
    def take(self, indices: _Indices) -> ChunkedArray: ...
    def to_pylist(self, *, maps_as_pydicts: _MapsAsPydicts = None) -> list[Any]: ...
    def to_numpy(self, zero_copy_only: bool = False) -> npt.NDArray[Any]: ...

class Table:
    def __len__(self) -> int: ...
    @property
    def columns(self) -> list[ChunkedArray]: ...
    @property
    def column_names(self) -> list[str]: ...
    def column(self, i: int | str) -> ChunkedArray: ...
    def select(self, columns: Iterable[int | str]) -> Table: ...
    def take(self, indices: _Indices) -> Table: ...
    def to_pylist(self, *, maps_as_pydicts: _MapsAsPydicts = None) -> list[dict[str, Any]]: ...
    def to_pandas(
        self,
        memory_pool: MemoryPool | None = None,
        categories: Sequence[str] | None = None,
        strings_to_categorical: bool = False,
        zero_copy_only: bool = False,
        integer_object_nulls: bool = False,
        date_as_object: bool = True,
        timestamp_as_object: bool = False,
        use_threads: bool = True,
        deduplicate_objects: bool = True,
        ignore_metadata: bool = False,
        safe: bool = True,
        split_blocks: bool = False,
        self_destruct: bool = False,
        maps_as_pydicts: _MapsAsPydicts = None,
        types_mapper: Callable[[DataType], ExtensionDtype | None] | None = None,
        coerce_temporal_nanoseconds: bool = False,
    ) -> pd.DataFrame: ...

def array(
    obj: Iterable[object],
    type: DataType | None = None,
    mask: Array | npt.NDArray[np.bool_] | None = None,
    size: int | None = None,
    from_pandas: bool | None = None,
    safe: bool = True,
    memory_pool: MemoryPool | None = None,
) -> Array | ChunkedArray: ...  # chunked when the data overflows one array, or when obj.__arrow_array__ says so
def table(
    data: Sequence[Array | ChunkedArray] | Mapping[str, Array | ChunkedArray | Sequence[object]] | pd.DataFrame,
    names: Sequence[str] | None = None,
    schema: Schema | None = None,
    metadata: Mapping[str | bytes, str | bytes] | None = None,
    nthreads: int | None = None,
) -> Table: ...
