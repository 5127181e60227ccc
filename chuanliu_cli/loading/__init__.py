"""Reading export files, mapping their columns, validating rows and upserting them into the store."""
