"""Local stubs of pyarrow.compute 26: the compute functions archi3d calls, array in, array out.

Element-wise functions give a ChunkedArray for a ChunkedArray input and an Array for an Array;
vector functions (unique, indices_nonzero) always give an Array, aggregates a Scalar. The generated
wrappers also take `options=` (a FunctionOptions object, instead of the keywords): not declared here.
"""

from typing import Literal, overload

from pyarrow import Array, BooleanScalar, ChunkedArray, MemoryPool, Scalar

# A Python value pyarrow turns into a scalar operand.
_Value = Scalar | str | bytes | int | float | bool

# --- comparisons and logic: (x, y, /) ----------------------------------------------------------------

@overload
def equal(
    x: ChunkedArray, y: ChunkedArray | Array | _Value, /, *, memory_pool: MemoryPool | None = None
) -> ChunkedArray: ...
@overload
def equal(x: Array | _Value, y: ChunkedArray, /, *, memory_pool: MemoryPool | None = None) -> ChunkedArray: ...
@overload
def equal(x: Array, y: Array | _Value, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def equal(x: _Value, y: Array, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def and_(
    x: ChunkedArray, y: ChunkedArray | Array | _Value, /, *, memory_pool: MemoryPool | None = None
) -> ChunkedArray: ...
@overload
def and_(x: Array | _Value, y: ChunkedArray, /, *, memory_pool: MemoryPool | None = None) -> ChunkedArray: ...
@overload
def and_(x: Array, y: Array | _Value, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def and_(x: _Value, y: Array, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def or_(
    x: ChunkedArray, y: ChunkedArray | Array | _Value, /, *, memory_pool: MemoryPool | None = None
) -> ChunkedArray: ...
@overload
def or_(x: Array | _Value, y: ChunkedArray, /, *, memory_pool: MemoryPool | None = None) -> ChunkedArray: ...
@overload
def or_(x: Array, y: Array | _Value, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def or_(x: _Value, y: Array, /, *, memory_pool: MemoryPool | None = None) -> Array: ...

# --- string functions ---------------------------------------------------------------------------------

@overload
def binary_length(strings: ChunkedArray, /, *, memory_pool: MemoryPool | None = None) -> ChunkedArray: ...
@overload
def binary_length(strings: Array, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def starts_with(
    strings: ChunkedArray, /, pattern: str, *, ignore_case: bool = False, memory_pool: MemoryPool | None = None
) -> ChunkedArray: ...
@overload
def starts_with(
    strings: Array, /, pattern: str, *, ignore_case: bool = False, memory_pool: MemoryPool | None = None
) -> Array: ...
@overload
def match_substring_regex(
    strings: ChunkedArray, /, pattern: str, *, ignore_case: bool = False, memory_pool: MemoryPool | None = None
) -> ChunkedArray: ...
@overload
def match_substring_regex(
    strings: Array, /, pattern: str, *, ignore_case: bool = False, memory_pool: MemoryPool | None = None
) -> Array: ...
@overload
def replace_substring(
    strings: ChunkedArray,
    /,
    pattern: str,
    replacement: str,
    *,
    max_replacements: int | None = None,
    memory_pool: MemoryPool | None = None,
) -> ChunkedArray: ...
@overload
def replace_substring(
    strings: Array,
    /,
    pattern: str,
    replacement: str,
    *,
    max_replacements: int | None = None,
    memory_pool: MemoryPool | None = None,
) -> Array: ...
@overload
def utf8_slice_codeunits(
    strings: ChunkedArray,
    /,
    start: int,
    stop: int | None = None,
    step: int = 1,
    *,
    memory_pool: MemoryPool | None = None,
) -> ChunkedArray: ...
@overload
def utf8_slice_codeunits(
    strings: Array, /, start: int, stop: int | None = None, step: int = 1, *, memory_pool: MemoryPool | None = None
) -> Array: ...
@overload
def split_pattern(
    strings: ChunkedArray,
    /,
    pattern: str,
    *,
    max_splits: int | None = None,
    reverse: bool = False,
    memory_pool: MemoryPool | None = None,
) -> ChunkedArray: ...
@overload
def split_pattern(
    strings: Array,
    /,
    pattern: str,
    *,
    max_splits: int | None = None,
    reverse: bool = False,
    memory_pool: MemoryPool | None = None,
) -> Array: ...

# --- lists, sets, selection ---------------------------------------------------------------------------

@overload
def list_element(
    lists: ChunkedArray, index: int | Scalar, /, *, memory_pool: MemoryPool | None = None
) -> ChunkedArray: ...
@overload
def list_element(lists: Array, index: int | Scalar, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
@overload
def is_in(
    values: ChunkedArray,
    /,
    value_set: Array | ChunkedArray,
    *,
    skip_nulls: bool = False,
    memory_pool: MemoryPool | None = None,
) -> ChunkedArray: ...
@overload
def is_in(
    values: Array,
    /,
    value_set: Array | ChunkedArray,
    *,
    skip_nulls: bool = False,
    memory_pool: MemoryPool | None = None,
) -> Array: ...
@overload
def filter(
    input: ChunkedArray,
    selection_filter: Array | ChunkedArray,
    /,
    null_selection_behavior: Literal["drop", "emit_null"] = "drop",
    *,
    memory_pool: MemoryPool | None = None,
) -> ChunkedArray: ...
@overload
def filter(
    input: Array,
    selection_filter: Array,
    /,
    null_selection_behavior: Literal["drop", "emit_null"] = "drop",
    *,
    memory_pool: MemoryPool | None = None,
) -> Array: ...
def unique(array: Array | ChunkedArray, /, *, memory_pool: MemoryPool | None = None) -> Array: ...
def indices_nonzero(values: Array | ChunkedArray, /, *, memory_pool: MemoryPool | None = None) -> Array: ...

# --- aggregates ---------------------------------------------------------------------------------------

def min(
    array: Array | ChunkedArray,
    /,
    *,
    skip_nulls: bool = True,
    min_count: int = 1,
    memory_pool: MemoryPool | None = None,
) -> Scalar: ...
def max(
    array: Array | ChunkedArray,
    /,
    *,
    skip_nulls: bool = True,
    min_count: int = 1,
    memory_pool: MemoryPool | None = None,
) -> Scalar: ...
def any(
    array: Array | ChunkedArray,
    /,
    *,
    skip_nulls: bool = True,
    min_count: int = 1,
    memory_pool: MemoryPool | None = None,
) -> BooleanScalar: ...
