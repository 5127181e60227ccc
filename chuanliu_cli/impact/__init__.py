"""`impact` (SPEC §12): did the granted traffic cause a change in an outcome metric of the following periods?

The data side (panel.py) gathers, period by period, what the real pipeline gives: each entity's grant and
its outcome metric. The estimators (rd.py: regression discontinuity at the tier cutoffs; did.py: the panel
of periods with entity fixed effects and trends, and the staggered-entry event study) use maintained
libraries made for them (rdrobust and rddensity; pyfixest), an optional extra: `pip install
'chuanliu[impact]'`. result.py holds the result, its JSON/CSV shape and the plain-language caveats.
"""

from __future__ import annotations

from chuanliu_cli.errors import UsageError

#: What the optional extra brings (the import names of its libraries).
LIBRARIES = ("rdrobust", "rddensity", "pyfixest", "pandas", "scipy")


def require_libraries() -> None:
    """UsageError (exit 2) naming the extra to install when its libraries are missing."""
    import importlib.util

    missing = [name for name in LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"impact needs the optional libraries {', '.join(missing)}",
            hint="pip install 'chuanliu[impact]'",
        )
