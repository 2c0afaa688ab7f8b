"""Fixtures shared by the end-to-end tests."""

import pytest

from labkit.cli import main


@pytest.fixture
def cli(capsys):
    """``python -m labkit ARGS`` in-process: returns (status, stdout, stderr)."""

    def run(*args, check=True):
        try:
            status = main([str(a) for a in args])
        except SystemExit as stop:
            status = stop.code
        captured = capsys.readouterr()
        if check:
            assert status == 0, captured.err
        return status, captured.out, captured.err

    return run
