"""Where the compiled metric queries run: DuckDB, or Spark."""
