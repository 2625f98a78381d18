"""One release number everywhere: helpers, set-up, changelog, every badge.

The Colab badges open the notebooks at the tag ``WORKSHOP_REF``, and the
set-up cell fetches the helpers at the same tag, so these must agree:
``helpers.__version__``, ``WORKSHOP_REF == "v" + __version__``, the newest
entry of CHANGELOG.md, every badge address (README and notebooks) and the
release stamped into each set-up cell. tools/release.py changes them together.
"""

import ast
import json
import pathlib
import re

import pytest

import build_notebooks
import helpers
import release
import setup_colab

ROOT = pathlib.Path(__file__).resolve().parents[1]
RELEASE = setup_colab.WORKSHOP_REF
CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
BUILT = [target for target in build_notebooks.TARGETS
         if (ROOT / target.path).is_file()]


def test_version_tag_and_changelog_agree():
    assert RELEASE == f"v{helpers.__version__}"
    assert setup_colab.release_version(RELEASE) == helpers.__version__
    assert release.read_version(ROOT) == helpers.__version__
    assert release.read_ref(ROOT) == RELEASE
    assert setup_colab.files_version(ROOT) == helpers.__version__
    versions = release.changelog_versions(CHANGELOG)
    assert versions[0] == helpers.__version__, "newest CHANGELOG.md entry"
    numbers = [release.parse_version(version) for version in versions]
    assert numbers == sorted(numbers, reverse=True) and len(set(numbers)) == len(
        numbers), "CHANGELOG.md entries newest first, each once"


def test_changelog_holds_only_release_entries_below_unreleased():
    titles = release.changelog_titles(CHANGELOG)
    assert "Unreleased" not in titles[1:], "## Unreleased comes first, once"
    entries = [title for title in titles if title != "Unreleased"]
    assert entries, "CHANGELOG.md has a release entry"
    for title in entries:
        assert re.fullmatch(r"\d+\.\d+\.\d+ \(\d{4}-\d{2}(-\d{2})?\)", title), title


def test_every_badge_opens_a_built_notebook_at_the_release():
    addresses = release.badge_addresses(ROOT)
    slug = setup_colab.REPO_URL.removeprefix("https://github.com/")
    colab_paths = {t.path for t in BUILT if t.style == "colab"}
    assert {where for where, *_ in addresses} >= {"README.md", *colab_paths}
    for where, found_slug, ref, path in addresses:
        assert (found_slug, ref) == (slug, RELEASE), f"{where}: {path} at {ref}"
        assert path in colab_paths, f"{where}: badge of {path}, not a Colab notebook"


def notebook(path):
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def cell(nb, cell_id):
    return next("".join(c["source"]) for c in nb["cells"] if c["id"] == cell_id)


@pytest.mark.parametrize("target", BUILT, ids=lambda target: target.path)
def test_each_notebook_is_stamped_with_the_release(target):
    nb = notebook(target.path)
    if target.style == "jupyter":
        check = cell(nb, build_notebooks.JUPYTER_CHECK_ID)
        assert build_notebooks.colab_badge_url("Colab_Practicals.ipynb") in check
        return
    badge = cell(nb, build_notebooks.BADGE_ID)
    assert f"({build_notebooks.colab_badge_url(target.path)})" in badge
    tree = ast.parse(cell(nb, build_notebooks.COLAB_SETUP_ID))
    stamped = [ast.literal_eval(node.value) for node in tree.body
               if isinstance(node, ast.Assign)
               and getattr(node.targets[0], "id", None) == "RELEASE"]
    assert stamped == [RELEASE]


def test_readme_says_how_to_release():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python tools/release.py X.Y.Z" in readme
    assert "git push --atomic origin main vX.Y.Z" in readme
    assert "git push --tags" not in readme
