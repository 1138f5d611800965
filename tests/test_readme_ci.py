"""The README opens with the two commands, and .ci/run runs the second one from a fresh virtualenv."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", text, re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_opens_with_serve_and_test_commands():
    text = (ROOT / "README.md").read_text()
    first_block = text.index("```sh")
    assert text[:first_block].strip() == "# spanhouse", "the two commands come first"
    serve, test = _readme_commands()
    assert serve == "pip install -e . && spanhouse serve"
    assert test == "pip install -e '.[test]' && pytest"


def test_ci_runs_the_readme_test_command_in_its_own_virtualenv():
    ci = (ROOT / ".ci" / "run").read_text()
    _, test = _readme_commands()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert test in commands
    assert any(c.startswith("python3 -m venv") for c in commands)
    assert commands.index(test) > next(i for i, c in enumerate(commands) if c.startswith(". "))
