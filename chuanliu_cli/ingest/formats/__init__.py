"""One reader per file format, all yielding the same batches of text cells."""
