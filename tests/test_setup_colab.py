"""Tests of setup_colab.py: Colab emulated with a fake ``google.colab`` module,
an empty working directory, a local git repository as the workshop repository
and a recording fake pip. The script runs in a subprocess, as in a notebook
kernel, so that nothing leaks into the test process."""

import importlib.metadata
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import build_notebooks
import setup_colab

ROOT = pathlib.Path(__file__).resolve().parents[1]
TAG = "v0.0-test"
REQUIREMENTS = dict(setup_colab.read_requirements(ROOT / "requirements.txt"))

# Colab's preinstalled versions (googlecolab/backend-info, pip freeze 2026-08).
COLAB_VERSIONS = {"torch": "2.11.0", "numpy": "2.1.3", "pandas": "2.2.3",
                  "matplotlib": "3.10.0", "ipywidgets": "7.7.1", "tqdm": "4.67.3",
                  "pytest": "8.4"}

FAKE_COLAB_OUTPUT = """\
import os
import pathlib


def enable_custom_widget_manager():
    pathlib.Path(os.environ["FAKE_COLAB_WIDGET_LOG"]).write_text("enabled\\n")
"""

FAKE_PIP = """\
import json
import os
import sys

with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_PIP_FAIL"):
    print("ERROR: No matching distribution found", file=sys.stderr)
    sys.exit(1)
"""


def git(*args, cwd):
    """Run git quietly with a neutral identity; return its stdout."""
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
               "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def copy_or_stand_in(name, destination):
    """Copy folder ``name`` from the working tree, or write a small stand-in."""
    source = ROOT / name
    needed = source / "__init__.py" if name == "helpers" else source
    if needed.exists() and any(source.iterdir()):
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(source, destination / name, ignore=ignore)
        return
    (destination / name).mkdir()  # before that part of the bundle has landed
    stand_in = "__init__.py" if name == "helpers" else "README.md"
    (destination / name / stand_in).write_text("# stand-in\n")


@pytest.fixture(scope="module")
def workshop_repo(tmp_path_factory):
    """A git repository holding the workshop files of the working tree, tagged."""
    repo = tmp_path_factory.mktemp("workshop-repo")
    git("init", "--quiet", cwd=repo)
    for name in ("helpers", "data", "pictures"):
        copy_or_stand_in(name, repo)
    for name in ("requirements.txt", "setup_colab.py"):
        shutil.copy2(ROOT / name, repo / name)
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "workshop files", cwd=repo)
    git("tag", TAG, cwd=repo)
    return repo


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """Folders with the fake google.colab package and the fake pip script."""
    base = tmp_path_factory.mktemp("fakes")
    package = base / "colab" / "google" / "colab"  # google: a namespace package
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "output.py").write_text(FAKE_COLAB_OUTPUT)
    (base / "fake_pip.py").write_text(FAKE_PIP)
    return base


class Runner:
    """Runs setup_colab.py in a subprocess and keeps what it did."""

    def __init__(self, fakes, repo, logs):
        self.fakes, self.repo, self.logs = fakes, repo, logs

    def env(self, colab, **extra):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("WORKSHOP_", "FAKE_", "PYTHONPATH"))}
        env.update(
            WORKSHOP_REPO_URL=str(self.repo), WORKSHOP_REF=TAG,
            WORKSHOP_PIP=f"{sys.executable} {self.fakes / 'fake_pip.py'}",
            FAKE_PIP_LOG=str(self.logs / "pip.log"),
            FAKE_COLAB_WIDGET_LOG=str(self.logs / "widgets.log"),
            MPLBACKEND="Agg",
        )
        if colab:
            env["PYTHONPATH"] = str(self.fakes / "colab")
        env.update(extra)
        return env

    def run(self, cwd, *, colab=True, command=None, **extra):
        """Run the script (or ``command``) in ``cwd``; return the process."""
        command = command or [sys.executable, "setup_colab.py"]
        return subprocess.run(command, cwd=cwd, env=self.env(colab, **extra),
                              capture_output=True, text=True, timeout=300,
                              check=False)

    def pip_calls(self):
        """Return the argument lists pip was called with so far."""
        log = self.logs / "pip.log"
        if not log.is_file():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def runner(fakes, workshop_repo, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    return Runner(fakes, workshop_repo, logs)


@pytest.fixture
def colab_dir(tmp_path):
    """An empty Colab working directory, holding only the downloaded script."""
    content = tmp_path / "content"
    content.mkdir()
    shutil.copy2(ROOT / "setup_colab.py", content / "setup_colab.py")
    return content


def snapshot(folder):
    """Return every file below ``folder`` with its size and modification time."""
    return {path.relative_to(folder).as_posix(): (path.stat().st_size,
                                                   path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts}


def output(process):
    return process.stdout + process.stderr


def test_fresh_colab_runtime_gets_the_files_and_installs_nothing_present(
        runner, colab_dir):
    process = runner.run(colab_dir)
    assert process.returncode == 0, output(process)
    for item in setup_colab.WORKSHOP_ITEMS:
        assert (colab_dir / item).exists(), item
    assert (colab_dir / "helpers" / "__init__.py").is_file()
    assert not list(colab_dir.glob(".*.partial"))
    assert runner.pip_calls() == []
    assert "fetched helpers, data, pictures, requirements.txt from" in process.stdout
    assert "installed: nothing (all present)" in process.stdout
    assert f"helpers: {colab_dir.resolve() / 'helpers'}" in process.stdout
    assert "Workshop set-up (Colab): Python" in process.stdout
    widgets_major = int(importlib.metadata.version("ipywidgets").split(".")[0])
    assert (runner.logs / "widgets.log").is_file() == (widgets_major >= 8)

    # A second run changes nothing and needs no network: the repository is gone.
    before = snapshot(colab_dir)
    process = runner.run(colab_dir, WORKSHOP_REPO_URL=str(colab_dir / "no-repo"))
    assert process.returncode == 0, output(process)
    assert "all present, nothing fetched" in process.stdout
    assert snapshot(colab_dir) == before
    assert runner.pip_calls() == []


def test_pip_gets_exactly_the_missing_names_and_never_torch(runner, colab_dir):
    # torchdiffeq is missing (as in Colab), nbval too (tests only: skipped in
    # Colab), and so are the four packages the script must never install.
    missing = "torch,numpy,pandas,matplotlib,torchdiffeq,nbval"
    process = runner.run(colab_dir, WORKSHOP_PRETEND_MISSING=missing)
    wanted = f"torchdiffeq>={REQUIREMENTS['torchdiffeq']}"
    assert runner.pip_calls() == [["install", wanted]]
    assert f"installed: {wanted}" in process.stdout
    assert process.returncode == 1  # torch & co. are missing: say so, fail
    for name in setup_colab.NEVER_INSTALL:
        assert f"{name} is not installed" in process.stdout
    assert "fix: use a standard Colab runtime" in process.stdout
    assert "Workshop set-up failed: torch is not installed" in process.stderr
    assert "Traceback" not in process.stderr


def test_locally_it_fetches_nothing_and_installs_what_requirements_list(
        runner, workshop_repo, tmp_path):
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(workshop_repo), str(clone), cwd=tmp_path)
    before = snapshot(clone)
    process = runner.run(clone / "helpers", colab=False,
                         command=[sys.executable, str(clone / "setup_colab.py")],
                         WORKSHOP_PRETEND_MISSING="nbval",
                         WORKSHOP_REPO_URL=str(tmp_path / "no-repo"))
    assert process.returncode == 0, output(process)
    assert runner.pip_calls() == [["install", f"nbval>={REQUIREMENTS['nbval']}"]]
    assert "Workshop set-up (local)" in process.stdout
    assert f"local copy in {clone.resolve()}" in process.stdout
    assert snapshot(clone) == before
    assert not (runner.logs / "widgets.log").exists()


def test_bonus_requirements_are_installed_only_when_missing(
        runner, workshop_repo, tmp_path):
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(workshop_repo), str(clone), cwd=tmp_path)
    shutil.copy2(ROOT / setup_colab.BONUS_REQUIREMENTS, clone)
    bonus = dict(setup_colab.read_requirements(clone / "requirements-bonus.txt"))
    command = [sys.executable, str(clone / "setup_colab.py")]
    process = runner.run(clone, colab=False, command=command)
    assert process.returncode == 0, output(process)
    assert runner.pip_calls() == []  # PyMC present (as in Colab): nothing to do
    process = runner.run(clone, colab=False, command=command,
                         WORKSHOP_PRETEND_MISSING="pymc")
    assert process.returncode == 0, output(process)
    assert runner.pip_calls() == [["install", f"pymc>={bonus['pymc']}"]]


def test_unreachable_repository_fails_with_a_readable_message(runner, colab_dir):
    process = runner.run(colab_dir, WORKSHOP_REPO_URL=str(colab_dir / "no-repo"))
    assert process.returncode == 1
    assert "SET-UP FAILED" in process.stdout
    assert "could not fetch the workshop files" in process.stdout
    assert "fix: check the internet connection" in process.stdout
    assert f"git clone --branch {TAG}" in process.stdout
    assert "Workshop set-up failed: could not fetch" in process.stderr
    assert "Traceback" not in process.stderr
    assert not (colab_dir / "helpers").exists()
    assert runner.pip_calls() == []


def test_pip_failure_names_the_command_that_fixes_it(runner, colab_dir):
    process = runner.run(colab_dir, WORKSHOP_PRETEND_MISSING="torchdiffeq",
                         FAKE_PIP_FAIL="1")
    assert process.returncode == 1
    wanted = f"torchdiffeq>={REQUIREMENTS['torchdiffeq']}"
    assert f"could not install {wanted}" in process.stdout
    assert "No matching distribution found" in process.stdout
    assert f'!pip install "{wanted}"' in process.stdout
    assert "installed: nothing (pip failed)" in process.stdout


def test_fetch_takes_a_commit_as_ref_and_only_what_is_absent(
        workshop_repo, tmp_path):
    commit = git("rev-parse", "HEAD", cwd=workshop_repo)
    (tmp_path / "data").mkdir()  # present: must be left alone
    copied = setup_colab.fetch_workshop_files(tmp_path, str(workshop_repo), commit)
    assert copied == ["helpers", "pictures", "requirements.txt", "setup_colab.py"]
    assert not any((tmp_path / "data").iterdir())
    assert (tmp_path / "requirements.txt").read_text() == (
        ROOT / "requirements.txt").read_text()
    assert setup_colab.fetch_workshop_files(tmp_path, "/no/such/repo", commit) == []


def colab_cell():
    notebook = json.loads((ROOT / "Colab_Practicals.ipynb").read_text())
    return next("".join(cell["source"]) for cell in notebook["cells"]
                if cell["id"] == build_notebooks.COLAB_SETUP_ID)


def test_colab_cell_makes_helpers_importable_in_its_own_process(runner, colab_dir):
    probe = ("import helpers, pathlib; "
             "print('HELPERS', pathlib.Path(helpers.__path__[0]).resolve())")
    command = [sys.executable, "-c", colab_cell() + "\n" + probe]
    process = runner.run(colab_dir, command=command)
    assert process.returncode == 0, output(process)
    assert f"HELPERS {colab_dir.resolve() / 'helpers'}" in process.stdout


def test_colab_cell_in_a_subfolder_of_a_clone_uses_the_parent_script(
        runner, workshop_repo, tmp_path):
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(workshop_repo), str(clone), cwd=tmp_path)
    (clone / "bonus").mkdir()
    probe = ("import helpers, pathlib; "
             "print('HELPERS', pathlib.Path(helpers.__path__[0]).resolve())")
    command = [sys.executable, "-c", colab_cell() + "\n" + probe]
    process = runner.run(clone / "bonus", colab=False, command=command)
    assert process.returncode == 0, output(process)
    assert f"HELPERS {clone.resolve() / 'helpers'}" in process.stdout
    assert not (clone / "bonus" / "setup_colab.py").exists()  # nothing downloaded


# --- pure functions, in-process ----------------------------------------------


def test_requirements_hold_lower_bounds_that_colab_satisfies():
    names = {setup_colab.normalise(name) for name in REQUIREMENTS}
    assert set(setup_colab.NEVER_INSTALL) | set(setup_colab.TESTS_ONLY) <= names
    assert {"torchdiffeq", "ipywidgets", "tqdm"} <= names
    for name, minimum in COLAB_VERSIONS.items():
        assert minimum is not None
        assert (setup_colab.version_tuple(minimum)
                >= setup_colab.version_tuple(REQUIREMENTS[name])), name
    # tqdm reads TQDM_DISABLE (used by conftest.py) from 4.66 on.
    assert setup_colab.version_tuple(REQUIREMENTS["tqdm"]) >= (4, 66)


@pytest.mark.parametrize("line", ["torch==2.0", "numpy<2", "pandas>=2.0,<3",
                                  "-e .", "git+https://example.invalid/x"])
def test_read_requirements_rejects_anything_but_lower_bounds(tmp_path, line):
    path = tmp_path / "requirements.txt"
    path.write_text(f"# comment\ntorch>=2.0\n{line}\n")
    with pytest.raises(ValueError, match=r"requirements\.txt:3: .*lower bounds only"):
        setup_colab.read_requirements(path)


def test_read_requirements_parses_names_bounds_and_comments(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# top\n\ntorch>=2.0  # why\ntqdm\nnbval >= 0.10\n")
    assert setup_colab.read_requirements(path) == [
        ("torch", "2.0"), ("tqdm", None), ("nbval", "0.10")]


@pytest.mark.parametrize(("text", "expected"), [
    ("2.13.0+cpu", (2, 13, 0)), ("0.2.5", (0, 2, 5)), ("8.4", (8, 4)),
    ("2.1.0rc1", (2, 1, 0)), ("dev", ())])
def test_version_tuple_reads_release_numbers(text, expected):
    assert setup_colab.version_tuple(text) == expected


def test_plan_installs_refuses_protected_and_too_old_packages():
    requirements = [("torch", "2.0"), ("torchdiffeq", "0.2.3"), ("nbval", "0.10"),
                    ("numpy", "999.0"), ("tqdm", "999.0")]
    to_install, refused = setup_colab.plan_installs(
        requirements, colab=False, pretend_missing=frozenset({"torch", "torchdiffeq"}))
    assert to_install == ["torchdiffeq>=0.2.3", "tqdm>=999.0"]
    assert [error.what.split()[0] for error in refused] == ["torch", "numpy"]
    assert "too old" in refused[1].what
    assert "--index-url https://download.pytorch.org/whl/cpu" in refused[0].fix
    to_install, refused = setup_colab.plan_installs(
        requirements, colab=True, pretend_missing=frozenset({"nbval"}))
    assert to_install == ["tqdm>=999.0"]
    assert "Change runtime type" in refused[0].fix


def test_urls_come_from_one_repository_constant():
    assert setup_colab.raw_file_url("setup_colab.py") == (
        "https://raw.githubusercontent.com/norbis-workshops/diffprog-python/"
        f"{setup_colab.WORKSHOP_REF}/setup_colab.py")
    with pytest.raises(ValueError, match="url='git@example.invalid:x.git'"):
        setup_colab.raw_file_url("x", url="git@example.invalid:x.git")


@pytest.mark.parametrize(("ref", "expected"), [
    ("v1.1.0", "1.1.0"), ("v10.0.12", "10.0.12"), ("main", None), ("1.1.0", None),
    ("v1.1", None), ("v1.1.0-rc1", None), ("0123abc", None)])
def test_release_version_is_read_only_from_release_tags(ref, expected):
    assert setup_colab.release_version(ref) == expected


def test_files_version_reads_the_text_of_helpers(tmp_path):
    assert setup_colab.files_version(tmp_path) is None  # no helpers/
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text('"""Old."""\nOLD = 1\n')
    assert setup_colab.files_version(tmp_path) is None  # before version numbers
    (tmp_path / "helpers" / "__init__.py").write_text('"""New."""\n\n'
                                                      '__version__ = "1.2.3"\n')
    assert setup_colab.files_version(tmp_path) == "1.2.3"


def test_missing_ref_is_named_without_blaming_the_connection(
        workshop_repo, tmp_path):
    with pytest.raises(setup_colab.SetupError) as caught:
        setup_colab.clone(str(workshop_repo), "v9.9.9", tmp_path / "checkout")
    assert "has no tag or branch 'v9.9.9'" in caught.value.what
    assert "git push --atomic origin main v9.9.9" in caught.value.fix
    assert "%env WORKSHOP_REF=main" in caught.value.fix
    assert "internet" not in caught.value.what + caught.value.fix
    assert not (tmp_path / "checkout").exists()  # no full clone was tried
