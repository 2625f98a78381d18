"""The package's layout rules, checked on the files themselves.

* every helpers docstring that names a notebook section names a heading that
  exists in the notebook sources (so the references cannot go stale);
* notebooks, tests, benchmarks and tools use only public names of helpers;
* each bonus notebook has one helpers module, one source and one test file,
  all named like it.
"""

import re
from pathlib import Path

import pytest

from build_notebooks import TARGETS

ROOT = Path(__file__).resolve().parent.parent
SECTION = re.compile(r'sections? "([^"]+)"')
PRIVATE = re.compile(r"\bhelpers(?:\.\w+)*\._(?!_)\w+"
                     r"|from helpers(?:\.\w+)* import (?:\(?\s*)?_\w+")
HEADING = re.compile(r"^# #+ (?:\d+\.\s+)?(.+?)\s*$", re.MULTILINE)


def headings() -> set:
    found = set()
    for source in (ROOT / "notebooks").rglob("*.py"):
        found |= {h.strip() for h in HEADING.findall(source.read_text())}
    return found


def section_references() -> list:
    references = []
    for module in sorted((ROOT / "helpers").rglob("*.py")):
        text = module.read_text()
        for match in SECTION.finditer(" ".join(text.split())):
            references.append((module.relative_to(ROOT).as_posix(), match.group(1)))
    return references


def test_the_section_finder_reads_headings_and_references():
    assert "Simulating the data" in headings()
    assert ("helpers/simulation.py", "Simulating the data") in section_references()


@pytest.mark.parametrize("module, section", section_references())
def test_every_section_a_docstring_names_exists(module, section):
    assert section in headings(), (
        f'{module} refers to notebook section "{section}", which no heading in '
        "notebooks/ has: rename the reference or the heading"
    )


def test_code_outside_helpers_uses_only_public_names():
    offenders = []
    for folder in ("notebooks", "tests", "benchmarks", "tools", "elephant",
                   "pictures"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "test_layout.py":  # its own examples of the rule
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PRIVATE.search(line) and "private" not in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line}")
    assert not offenders, "\n".join(offenders)


def test_the_public_name_rule_catches_private_imports():
    assert PRIVATE.search("from helpers._utils import one_thread")
    assert PRIVATE.search("from helpers.training import _train")
    assert not PRIVATE.search("from helpers.bonus import theophylline as pk")
    assert not PRIVATE.search("print(helpers.__path__)")


BONUS = [t for t in TARGETS if t.path.startswith("bonus/")]


@pytest.mark.parametrize("target", BONUS, ids=[t.path for t in BONUS])
def test_each_bonus_notebook_has_its_module_source_and_tests(target):
    name = Path(target.sources).stem
    assert (ROOT / "helpers" / "bonus" / f"{name}.py").is_file()
    assert (ROOT / "notebooks" / f"{name}.py").is_file()
    assert (ROOT / "tests" / f"test_{name}.py").is_file()
    assert Path(target.path).stem.lower() == name
