"""Format conformance tests: schemas, vectors, parsers."""
