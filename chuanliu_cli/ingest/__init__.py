"""Files to canonical rows: format readers, file discovery, header mapping, canonicalization, loader."""
