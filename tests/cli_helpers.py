"""Running ``aeserve`` verbs in-process from tests: ``code, out, err = run_cli([...], capsys)``."""

from __future__ import annotations

from aeserve.cli import main


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run ``aeserve ARGV`` through the console entry point; returns (exit code, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err
