"""The result order (ranked by rank, then rank_by descending with NULL last, then key) is the same whether
numpy's lexsort or polars' sort computes it; the labels are joined to the rows as a join by key gives them."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chuanliu_cli.scoring.pipeline import _result_order


def _polars_order(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(
        [pl.col("rank").is_null(), "rank", pl.col("v").is_null(), "v", "k"],
        descending=[False, False, False, True, False],
    )


@pytest.mark.parametrize("seed", range(40))
def test_lexsort_gives_the_polars_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 300))
    keys = sorted({f"k{int(x):05d}" for x in rng.integers(0, 100_000, n)})
    n = len(keys)
    pool = [None, 0.0, 1.5, 2.25, -3.0, math.inf, -math.inf, 7.0]
    values = [
        pool[int(i)] if rng.random() < 0.6 else float(rng.integers(-5, 5)) for i in rng.integers(0, 8, n)
    ]
    ranked = rng.random(n) < 0.4
    ranks = iter(rng.permutation(int(ranked.sum())) + 1)
    frame = pl.DataFrame(
        {
            "k": keys,
            "v": pl.Series(values, dtype=pl.Float64),
            "rank": pl.Series([int(next(ranks)) if r else None for r in ranked], dtype=pl.Int64),
        }
    )
    sc = SimpleNamespace(key="k", rank_by="v")
    assert _result_order(frame, sc).equals(_polars_order(frame))  # type: ignore[arg-type]
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=seed)  # not in key order: polars sorts
    assert _result_order(shuffled, sc).equals(_polars_order(frame))  # type: ignore[arg-type]


def test_a_nan_value_is_left_to_polars() -> None:
    frame = pl.DataFrame(
        {
            "k": ["a", "b", "c"],
            "v": [1.0, float("nan"), None],
            "rank": pl.Series([None, None, None], dtype=pl.Int64),
        }
    )
    sc = SimpleNamespace(key="k", rank_by="v")
    assert _result_order(frame, sc).equals(_polars_order(frame))  # type: ignore[arg-type]


def test_labels_join_keeps_one_row_per_entity_and_the_first_name() -> None:
    """with_labels joins the names by key: names unique by key (as the name queries give them) are joined
    as they are; a key named twice keeps its first name and never doubles the entity's row."""
    from chuanliu_cli.scoring.pipeline import with_labels

    sc = SimpleNamespace(key="item_id")
    frame = pl.DataFrame({"item_id": ["a", "b", "c"], "v": [1.0, 2.0, 3.0]})
    unique = pl.DataFrame({"k": ["c", "a", "z"], "name": ["C", "A", "Z"]})
    out = with_labels(sc, frame, unique)  # type: ignore[arg-type]
    assert out.columns == ["item_id", "name", "v"]
    assert out.rows() == [("a", "A", 1.0), ("b", None, 2.0), ("c", "C", 3.0)]
    doubled = pl.DataFrame({"k": ["a", "b", "a"], "name": ["first", "B", "second"]})
    out = with_labels(sc, frame, doubled)  # type: ignore[arg-type]
    assert out.rows() == [("a", "first", 1.0), ("b", "B", 2.0), ("c", None, 3.0)]
    # no names (none loaded, or a promoter scorecard whose orders name no promoter): NULL text names
    for nobody in (None, pl.DataFrame({"k": [], "name": []}, schema={"k": pl.Utf8, "name": pl.Utf8})):
        out = with_labels(sc, frame, nobody)  # type: ignore[arg-type]
        assert out.schema["name"] == pl.Utf8
        assert out.rows() == [("a", None, 1.0), ("b", None, 2.0), ("c", None, 3.0)]


KEY_TEXT = st.one_of(st.none(), st.text(alphabet="ab0", max_size=3))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(KEY_TEXT, max_size=30),
    st.lists(st.tuples(KEY_TEXT, st.one_of(st.none(), st.text(max_size=2))), max_size=30),
    st.booleans(),
)
def test_the_labels_join_by_hash_is_the_join_by_text(
    keys: list[str | None], names: list[tuple[str | None, str | None]], collide: bool
) -> None:
    """left_join_text joins by the keys' hashes and checks every match against the strings: the rows of a
    join by the strings, in the keys' order, whatever the keys (NULL, repeated, named twice or not at all);
    with every key given one hash (`collide`: the check must catch it) it falls back to the strings."""
    from chuanliu_cli.scoring.pipeline import left_join_text

    left = pl.DataFrame({"k": keys}, schema={"k": pl.Utf8})
    right = pl.DataFrame(
        {"k": [k for k, _ in names], "name": [n for _, n in names]}, schema={"k": pl.Utf8, "name": pl.Utf8}
    )
    expected = left.join(right, on="k", how="left", maintain_order="left")
    one_hash = (lambda column: pl.lit(7, dtype=pl.UInt64)) if collide else None
    assert left_join_text(left, right, one_hash).equals(expected)
