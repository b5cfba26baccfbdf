"""Shared by the unit and integration tests: this folder is on ``sys.path`` (``headless``)."""
