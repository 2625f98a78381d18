"""Every Colab badge, tried as a new learner would, offline.

A bare copy of this working tree stands in for GitHub, tagged with the
release the notebooks are built for (``WORKSHOP_REF``); a fresh folder
stands in for ``/content`` (tests/colab_emulation.py says how). Each Colab
notebook, read from the tag, runs its unmodified set-up cell twice and then
resolves every import and ``helpers.X`` it uses. The negative cases are the
ways a release can go wrong: no tag yet, a tag on an older commit, files of
another release left in the runtime, and a branch tried while the tag is
missing.
"""

import re

import pytest

import build_notebooks
import colab_emulation
import setup_colab
from colab_emulation import Colab, cell_text, code_cells, helpers_uses

RELEASE = setup_colab.WORKSHOP_REF
VERSION = setup_colab.release_version(RELEASE)
SETUP_ID = build_notebooks.COLAB_SETUP_ID
TORCHDIFFEQ = dict(setup_colab.read_requirements(
    colab_emulation.ROOT / "requirements.txt"))["torchdiffeq"]
COLAB_TARGETS = [target.path for target in build_notebooks.TARGETS
                 if target.style == "colab"
                 and (colab_emulation.ROOT / target.path).is_file()]
JUPYTER_TARGETS = [target.path for target in build_notebooks.TARGETS
                   if target.style == "jupyter"
                   and (colab_emulation.ROOT / target.path).is_file()]


def output(process):
    return process.stdout + process.stderr


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    return colab_emulation.make_fakes(tmp_path_factory.mktemp("fakes"))


@pytest.fixture(scope="module")
def github(tmp_path_factory):
    """The release as GitHub would hold it: main tagged ``WORKSHOP_REF``."""
    return colab_emulation.make_github(tmp_path_factory.mktemp("github"), RELEASE)


@pytest.fixture(scope="module")
def untagged_github(tmp_path_factory):
    """The release commit pushed without its tag."""
    return colab_emulation.make_github(tmp_path_factory.mktemp("untagged"), None)


@pytest.fixture
def colab(fakes, github, tmp_path):
    return Colab(fakes, github, tmp_path)


def test_the_release_has_a_version_the_emulation_can_check():
    assert VERSION is not None, f"WORKSHOP_REF={RELEASE!r} is not a vX.Y.Z tag"


@pytest.mark.parametrize("path", COLAB_TARGETS)
def test_notebook_opened_from_its_badge_sets_up_and_imports(colab, tmp_path, path):
    notebook = colab.notebook(path, RELEASE)  # what the badge opens
    uses = helpers_uses(code_cells(notebook, SETUP_ID))
    assert any(chain[0] == "helpers" for chain in uses["attributes"]) or any(
        module == "helpers" or module.startswith("helpers.")
        for module, _ in uses["names"]), "the notebook uses helpers"
    process, result = colab.run_cell(cell_text(notebook, SETUP_ID),
                                     tmp_path / "content", uses)
    assert process.returncode == 0, output(process)
    assert re.search(rf"fetched helpers, .* at {re.escape(RELEASE)}\b", process.stdout)
    assert result["version"] == VERSION
    assert result["helpers"] == str((tmp_path / "content" / "helpers").resolve())
    assert result["unresolved"] == []
    assert result["seconds"][1] < 1.0, result["seconds"]
    assert colab.pip_calls() == [["install", f"torchdiffeq>={TORCHDIFFEQ}"]]
    print(f"\n{path}: OK, set-up {result['seconds'][0]:.1f} s, "
          f"again {result['seconds'][1]:.2f} s")


@pytest.mark.parametrize("path", JUPYTER_TARGETS)
def test_jupyter_notebook_opened_in_colab_points_to_the_colab_notebook(
        colab, tmp_path, path):
    notebook = colab.notebook(path, RELEASE)
    check = cell_text(notebook, build_notebooks.JUPYTER_CHECK_ID)
    process, result = colab.run_cell(check, tmp_path / "content")
    assert process.returncode == 1 and result is None
    assert "In Colab, open the Colab notebook instead" in process.stderr
    assert build_notebooks.colab_badge_url("Colab_Practicals.ipynb") in process.stderr
    assert "torchdiffeq" not in output(process)
    print(f"\n{path}: {process.stderr.strip().splitlines()[-1]}")


def practicals_cell(colab):
    return cell_text(colab.notebook("Colab_Practicals.ipynb", "main"), SETUP_ID)


def test_missing_tag_is_named_and_not_blamed_on_the_connection(
        fakes, untagged_github, tmp_path):
    colab = Colab(fakes, untagged_github, tmp_path)
    process, result = colab.run_cell(practicals_cell(colab), tmp_path / "content")
    assert process.returncode == 1 and result is None
    assert f"Release {RELEASE} is not on GitHub (the connection works)" in (
        process.stderr)
    assert f"git push --atomic origin main {RELEASE}" in process.stderr
    assert "%env WORKSHOP_REF=main" in process.stderr
    assert "internet connection" not in output(process)


def test_missing_tag_with_a_local_script_is_named_by_the_set_up_script(
        fakes, untagged_github, tmp_path):
    colab = Colab(fakes, untagged_github, tmp_path)
    content = tmp_path / "content"
    content.mkdir()
    (content / "setup_colab.py").write_text(
        (colab_emulation.ROOT / "setup_colab.py").read_text())
    process, result = colab.run_cell(practicals_cell(colab), content)
    assert process.returncode == 1 and result is None
    assert f"has no tag or branch {RELEASE!r}" in process.stdout
    assert "internet connection" not in output(process)


def test_branch_works_while_the_pinned_tag_is_missing(
        fakes, untagged_github, tmp_path):
    colab = Colab(fakes, untagged_github, tmp_path)
    process, result = colab.run_cell(practicals_cell(colab), tmp_path / "content",
                                     WORKSHOP_REF="main")
    assert process.returncode == 0, output(process)
    assert "at main" in process.stdout
    assert result["version"] == VERSION


def older_release(script_checks):
    """Return an edit that makes a tree look like the release before this one.

    Args:
        script_checks: keep the set-up script's version checks (False: a
            script from before they existed).
    """
    def edit(source):
        init = source / "helpers" / "__init__.py"
        init.write_text(setup_colab.VERSION_LINE.sub("", init.read_text()))
        script = source / "setup_colab.py"
        text = script.read_text().replace(f'"{RELEASE}"', '"v0.9.0"')
        if not script_checks:
            text = text.replace("RELEASE_TAG.fullmatch(ref)", "None")
        script.write_text(text)
    return edit


@pytest.mark.parametrize("script_checks", [True, False],
                         ids=["current script", "script without checks"])
def test_tag_on_an_older_commit_stops_at_the_set_up_cell(
        fakes, tmp_path, script_checks):
    stale = colab_emulation.make_github(tmp_path / "stale", RELEASE,
                                        older_release(script_checks))
    colab = Colab(fakes, stale, tmp_path)
    cell = cell_text(colab.notebook("Colab_Practicals.ipynb", "main"), SETUP_ID)
    notebook = colab.notebook("Colab_Practicals.ipynb", RELEASE)
    uses = helpers_uses(code_cells(notebook, SETUP_ID))
    process, result = colab.run_cell(cell, tmp_path / "content", uses)
    assert process.returncode == 1 and result is None, output(process)
    assert "ImportError" not in output(process)
    if script_checks:
        assert f"holds helpers version unknown (before 1.1.0), not {VERSION}" in (
            process.stdout)
    else:
        assert (f"This notebook is release {RELEASE}, but the helpers in "
                in process.stderr)
        assert "Runtime > Disconnect and delete runtime" in process.stderr


def test_files_of_another_release_in_content_are_fetched_again(colab, tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    for name in ("helpers", "data", "pictures"):
        (content / name).mkdir()
    (content / "helpers" / "__init__.py").write_text("OLD = True\n")
    (content / "requirements.txt").write_text("torch>=2.0\n")
    (content / "setup_colab.py").write_text('WORKSHOP_REF = "v0.9.0"\n'
                                            "raise SystemExit('old script ran')\n")
    process, result = colab.run_cell(practicals_cell(colab), content)
    assert process.returncode == 0, output(process)
    assert result["version"] == VERSION
    assert "moved to workshop-old-unversioned/" in process.stdout
    assert (content / "workshop-old-unversioned" / "helpers" / "__init__.py"
            ).read_text() == "OLD = True\n"
    assert f'WORKSHOP_REF = "{RELEASE}"' in (content / "setup_colab.py").read_text()


def test_old_helpers_imported_before_the_cell_need_a_restart(colab, tmp_path):
    content = tmp_path / "content"
    (content / "helpers").mkdir(parents=True)
    (content / "helpers" / "__init__.py").write_text("OLD = True\n")
    imported_first = "import sys\nsys.path.insert(0, '.')\nimport helpers\n"
    process, result = colab.run_cell(imported_first + practicals_cell(colab), content)
    assert process.returncode == 1 and result is None
    assert "this runtime imported helpers (no version) earlier" in process.stdout
    assert "fix: Runtime > Restart session, then run the set-up cell again" in (
        process.stdout)
    assert setup_colab.files_version(content) == VERSION  # fetched for the restart
