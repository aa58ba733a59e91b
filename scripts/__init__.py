"""Maintainer scripts (building the bundled sample and the test fixtures, versioning)."""
