"""The test suite (a package, so shared code is imported as tests.helpers)."""
