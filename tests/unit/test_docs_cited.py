"""What README, ``--help`` and the code cite is in the repository: docs/ files and their
sections, the LICENSE, and no reference to a design document that is not shipped."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main

ROOT = Path(__file__).resolve().parents[2]
CITE = re.compile(r"(docs/[\w-]+\.md)(?: §(\d+))?")


def _texts() -> dict[str, str]:
    paths = [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    for top in ("harness", "checkers", "benchmarks", "tests"):
        paths += (ROOT / top).rglob("*.py")
    out = {str(p.relative_to(ROOT)): p.read_text() for p in paths}
    for args in ([], ["check"], ["run"], ["show"], ["doctor"], ["suite"], ["compare"]):
        out[f"nats-chaos {' '.join(args)} --help"] = (
            CliRunner().invoke(main, [*args, "--help"]).output
        )
    return out


def test_every_docs_citation_names_a_file_and_section_that_exist() -> None:
    cited = 0
    for where, text in _texts().items():
        for doc, section in CITE.findall(text):
            path = ROOT / doc
            assert path.is_file(), f"{where} cites {doc}, which is missing"
            if section:
                assert re.search(rf"^## {section}\. ", path.read_text(), re.M), (
                    f"{where} cites {doc} §{section}, which has no such section"
                )
            cited += 1
    assert cited > 20  # README, --help and module docstrings do cite them


def test_nothing_cites_the_design_document_which_is_not_in_the_repository() -> None:
    assert not (ROOT / "DESIGN.md").exists()
    me = str(Path(__file__).resolve().relative_to(ROOT))
    for where, text in _texts().items():
        if where != me:
            assert "DESIGN §" not in text and "DESIGN.md" not in text, where


def test_the_licence_is_apache_2_in_full_and_declared() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000  # the full text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]


def test_readme_keeps_two_setup_commands_and_names_the_unit_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set-up: two commands", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert all(re.search(rf"^{c.split()[1]}:", makefile, re.M) for c in commands)
    assert "`make test-unit`" in readme and re.search(r"^test-unit:", makefile, re.M)
    took = re.search(r"`make test` takes about (\d+) minutes", readme)  # within CI's budget
    assert took is not None and int(took.group(1)) <= 30
