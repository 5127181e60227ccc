"""The DuckDB store: database file and lock, recorded runs, what is loaded."""
