"""The ``aeserve`` group: every verb resolves; -v/--verbose turns aeserve's logging on; the library
alone stays silent."""

from __future__ import annotations

import logging
import subprocess
import sys

import click
from cli_helpers import run_cli

from aeserve.cli import VERBS, cli


def test_verbose_logs_the_runtime_choice_to_stderr_and_cleans_up(tmp_path, capsys):
    out = str(tmp_path / "g.png")
    code, stdout, stderr = run_cli(["generate", "-n", "2", "--quiet", "--out", out], capsys)
    assert code == 0, stderr
    assert "aeserve INFO" not in stderr
    code, stdout, stderr = run_cli(["-v", "generate", "-n", "2", "--quiet", "--out", out], capsys)
    assert code == 0, stderr
    assert "aeserve INFO aeserve.runtime: runtime: embedded:" in stderr and "(chosen by default)" in stderr
    assert "DEBUG" not in stderr and "wrote" in stdout
    code, _, stderr = run_cli(["-vv", "generate", "-n", "2", "--quiet", "--out", out], capsys)
    assert "DEBUG aeserve.runtime.embedded: ONNX Runtime session for" in stderr
    logger = logging.getLogger("aeserve")  # the command removed what it added
    assert logger.level == logging.NOTSET
    assert [type(h) for h in logger.handlers] == [logging.NullHandler]


def test_library_warnings_are_silent_until_the_application_configures_logging(tmp_path):
    code = (
        "import logging, aeserve\n"
        "logging.getLogger('aeserve.runtime.triton').warning('lost the connection')\n"
        "c = aeserve.Client(); c.generate(2); c.close()\n"
    )
    silent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={"AESERVE_REPOSITORY": _repo(), "PATH": ""}, timeout=120)
    assert silent.returncode == 0, silent.stderr
    assert silent.stdout == "" and silent.stderr == ""
    loud = subprocess.run([sys.executable, "-c", "import logging; logging.basicConfig(level=logging.INFO)\n" + code],
                          capture_output=True, text=True, cwd=tmp_path, env={"AESERVE_REPOSITORY": _repo(), "PATH": ""},
                          timeout=120)
    assert "WARNING:aeserve.runtime.triton:lost the connection" in loud.stderr
    assert "INFO:aeserve.runtime:runtime: embedded:" in loud.stderr


def _repo() -> str:
    from aeserve.repository import default_repository

    return str(default_repository())


def test_every_verb_loads_its_command():
    ctx = click.Context(cli)
    for verb in VERBS:
        cmd = cli.get_command(ctx, verb)
        assert isinstance(cmd, click.Command) and cmd.name == verb, verb
    assert cli.list_commands(ctx) == sorted(VERBS)
    assert cli.get_command(ctx, "no-such-verb") is None
