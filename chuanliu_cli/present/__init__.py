"""Results to people and files: JSON documents, file writers, Rich tables, the HTML report."""
