"""Arrow arrays from numpy buffers, without `pyarrow.array`.

`pyarrow.array` asks pandas whether its input is a pandas object, which imports pandas: 0.27 s of every
scoring command that built an array (a third of `eligible`'s whole process on the sample). Building the
array from its buffers is zero-copy and imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def from_numpy(values: np.ndarray, arrow_type: Any, missing: np.ndarray | None = None) -> Any:
    """`values` (a 1-D numpy array of int32, int64, float64 or bool) as an Arrow array of `arrow_type`,
    NULL where `missing` is True."""
    import numpy as np
    import pyarrow as pa

    n = len(values)
    if pa.types.is_boolean(arrow_type):
        data = pa.py_buffer(np.packbits(np.asarray(values, dtype=np.bool_), bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=arrow_type.to_pandas_dtype()))
    nulls = 0 if missing is None else int(np.count_nonzero(missing))
    validity = None
    if nulls:
        assert missing is not None
        validity = pa.py_buffer(np.packbits(~np.asarray(missing, dtype=np.bool_), bitorder="little"))
    return pa.Array.from_buffers(arrow_type, n, [validity, data], null_count=nulls)
