"""Set up the workshop notebooks in Google Colab, or check a local set-up.

In Colab (the notebooks' first code cell downloads this file and runs it):

1. fetch ``helpers/`` (with its sub-folders), ``data/``, ``pictures/`` and
   ``requirements.txt`` from the repository at the notebook's release tag, but
   only those that are absent from the working directory, or left there by
   another release (those are moved to ``workshop-old-<version>/`` first);
2. install only the packages of ``requirements.txt`` (and, when present,
   ``requirements-bonus.txt``) that are missing, and never torch, numpy,
   pandas or matplotlib: Colab ships them built for its hardware, and
   replacing them under a running kernel breaks it;
3. make ``helpers`` importable and switch on what the widgets need;
4. print a short report: Python, torch, device, what was installed, seconds.

Anywhere else it fetches nothing: it checks the environment against
``requirements.txt``, installs what is missing (never the four above) and
reports. A second run changes nothing, needs no network and is quick.

Run it inside the notebook's process, ``runpy.run_path("setup_colab.py",
run_name="__main__")``, so that the change to ``sys.path`` lasts; or as a
script, ``python setup_colab.py``. A failure prints what failed and the
command that fixes it, then raises ``SystemExit`` (exit status 1).

Environment variables (all optional):
    WORKSHOP_REPO_URL: repository to fetch from instead of ``REPO_URL``
        (a fork, or a local clone for tests).
    WORKSHOP_REF: tag, branch or commit to fetch instead of ``WORKSHOP_REF``
        (the notebooks' set-up cell sets it to the release they were built
        for, unless it is set already).
    WORKSHOP_PIP: command that replaces ``python -m pip`` (tests put a
        recording fake here).
    WORKSHOP_PRETEND_MISSING: comma-separated package names to treat as not
        installed (tests use it to walk the install path).
"""

import importlib
import importlib.metadata
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

REPO_URL = "https://github.com/norbis-workshops/diffprog-python"
WORKSHOP_REF = "v1.2.1"

# What the notebooks need next to them; fetched when any of these is absent.
WORKSHOP_ITEMS = ("helpers", "data", "pictures", "requirements.txt")
# Copied along when absent, so that a later run finds a local copy.
OPTIONAL_ITEMS = ("setup_colab.py", "requirements-bonus.txt")
# Read after requirements.txt when present: PyMC for a bonus notebook (Colab
# ships it, so there nothing is installed from it).
BONUS_REQUIREMENTS = "requirements-bonus.txt"
# Never installed or upgraded by this script, whatever is found.
NEVER_INSTALL = ("torch", "numpy", "pandas", "matplotlib")
# Listed in requirements.txt for the test suite only; not needed in Colab.
TESTS_ONLY = ("nbval", "pytest")

GIT_TIMEOUT_S = 300
PIP_TIMEOUT_S = 600
# Asking the repository whether a ref exists takes about a second; a network
# that does not answer within this is reported before any long clone starts.
LS_REMOTE_TIMEOUT_S = 30
RELEASE_TAG = re.compile(r"v(?P<version>\d+\.\d+\.\d+)")
COMMIT = re.compile(r"[0-9a-f]{7,40}")
VERSION_LINE = re.compile(r'^__version__ = "(?P<version>[^"]+)"', re.MULTILINE)


class SetupError(Exception):
    """A step that failed, with the command that fixes it.

    Args:
        what: what failed, in one sentence.
        fix: the command or action that fixes it.
        detail: what the failing tool said, if anything.
    """

    def __init__(self, what, fix, detail=""):
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.detail = detail


def repo_url():
    """Return the repository address: ``WORKSHOP_REPO_URL`` or ``REPO_URL``."""
    return os.environ.get("WORKSHOP_REPO_URL") or REPO_URL


def workshop_ref():
    """Return the ref to fetch: ``WORKSHOP_REF`` from the environment or default."""
    return os.environ.get("WORKSHOP_REF") or WORKSHOP_REF


def release_version(ref):
    """Return the version a release tag names (``"v1.1.0"`` -> ``"1.1.0"``).

    Returns None for a branch or a commit, whose version is not known ahead.
    """
    match = RELEASE_TAG.fullmatch(ref)
    return match.group("version") if match else None


def files_version(target):
    """Return ``__version__`` of ``target/helpers`` read from its text, or None.

    None when ``helpers/`` is absent or older than version numbers (1.0.0
    and before had none). Reading the text leaves the running kernel alone.
    """
    init = pathlib.Path(target) / "helpers" / "__init__.py"
    if not init.is_file():
        return None
    match = VERSION_LINE.search(init.read_text(encoding="utf-8"))
    return match.group("version") if match else None


def raw_file_url(path, ref=WORKSHOP_REF, url=REPO_URL):
    """Return the raw.githubusercontent.com address of one file of the repository.

    Args:
        path: file path inside the repository, e.g. ``"setup_colab.py"``.
        ref: tag, branch or commit.
        url: GitHub address ``https://github.com/<owner>/<name>``.

    Returns:
        The download address of the file at ``ref``.
    """
    prefix = "https://github.com/"
    if not url.startswith(prefix):
        raise ValueError(f"url={url!r} is not a GitHub address starting with {prefix}")
    slug = url[len(prefix):].strip("/").removesuffix(".git")
    return f"https://raw.githubusercontent.com/{slug}/{ref}/{path}"


def in_colab():
    """Return True when running inside Google Colab."""
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def normalise(name):
    """Return a package name in the form pip compares: lower case, dashes."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_tuple(text):
    """Return the leading release numbers of a version, e.g. (2, 13, 0)."""
    match = re.match(r"\d+(\.\d+)*", text)
    if match is None:
        return ()
    return tuple(int(part) for part in match.group(0).split("."))


def read_requirements(path):
    """Read a requirements file that holds names with lower bounds only.

    Args:
        path: path to ``requirements.txt``.

    Returns:
        A list of ``(name, minimum)`` pairs in file order; ``minimum`` is a
        version string, or None for a line without a bound.

    Raises:
        ValueError: a line is neither ``name`` nor ``name>=version``.
    """
    requirements = []
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = re.fullmatch(
            r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*([0-9][0-9A-Za-z.+!]*))?", text)
        if match is None:
            raise ValueError(
                f"{path}:{number}: {text!r} is not allowed; "
                "use 'name' or 'name>=version' (lower bounds only)"
            )
        requirements.append((match.group(1), match.group(2)))
    return requirements


def installed_version(name, pretend_missing=frozenset()):
    """Return the installed version of a distribution, or None if absent.

    Args:
        name: distribution name, e.g. ``"torchdiffeq"``.
        pretend_missing: normalised names to report as absent (a test hook).
    """
    if normalise(name) in pretend_missing:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def spec(name, minimum):
    """Return the pip argument for a requirement, e.g. ``torchdiffeq>=0.2.3``."""
    return name if minimum is None else f"{name}>={minimum}"


def pip_fix(specs, colab):
    """Return the command a user runs to install ``specs`` by hand."""
    quoted = " ".join(f'"{item}"' for item in specs)
    if colab:
        return f"run in a cell: !pip install {quoted}   (then run the set-up again)"
    return f"{sys.executable} -m pip install {quoted}"


def plan_installs(requirements, colab, pretend_missing=frozenset()):
    """Decide what to install, and what is missing but must not be installed.

    Args:
        requirements: ``(name, minimum)`` pairs from :func:`read_requirements`.
        colab: True in Colab, where the test-only packages are skipped.
        pretend_missing: normalised names to treat as absent (a test hook).

    Returns:
        ``(to_install, refused)``: pip arguments such as ``"torchdiffeq>=0.2.3"``
        for what is absent or older than its bound, and a list of
        :class:`SetupError` for protected packages that are absent or too old.
    """
    to_install, refused = [], []
    for name, minimum in requirements:
        if colab and normalise(name) in TESTS_ONLY:
            continue
        version = installed_version(name, pretend_missing)
        if version is not None and (
            minimum is None or version_tuple(version) >= version_tuple(minimum)
        ):
            continue
        if normalise(name) not in NEVER_INSTALL:
            to_install.append(spec(name, minimum))
            continue
        found = "not installed" if version is None else f"{version}, too old"
        if colab:
            fix = "use a standard Colab runtime: Runtime > Change runtime type"
        else:
            fix = (
                f"{pip_fix([spec(name, minimum)], colab)}"
                + ("  (CPU-only: add --index-url https://download.pytorch.org/whl/cpu)"
                   if normalise(name) == "torch" else "")
            )
        refused.append(SetupError(
            f"{name} is {found} (need {spec(name, minimum)}); this script never "
            "installs torch, numpy, pandas or matplotlib",
            fix,
        ))
    return to_install, refused


def run_command(command, timeout, what, fix, cwd=None):
    """Run a command quietly; raise SetupError with its last output on failure."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    except FileNotFoundError:
        raise SetupError(f"{what}: the command {command[0]!r} was not found", fix)
    except subprocess.TimeoutExpired:
        raise SetupError(f"{what}: no answer within {timeout} s", fix)
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()[-8:]
        detail = "\n".join([f"{shlex.join(command)} exited with {result.returncode}:",
                            *said])
        raise SetupError(what, fix, detail)
    return result


def missing_ref_fix(url, ref):
    """Return what to do when ``url`` has no tag or branch ``ref``."""
    return (
        f"a maintainer publishes release {ref} with: git push --atomic origin main "
        f"{ref}; meanwhile, to use a branch (or a fork), run a cell with "
        "%env WORKSHOP_REF=main (and %env WORKSHOP_REPO_URL=<fork address>) "
        "and run the set-up again"
    )


def check_ref(url, ref, fix):
    """Ask ``url`` whether it has the tag or branch ``ref``, quickly.

    Tells "no network" from "no such release" before any long clone starts.

    Args:
        url: repository address.
        ref: tag or branch.
        fix: what to do when the repository does not answer.

    Raises:
        SetupError: the repository did not answer, or has no such ref.
    """
    result = run_command(
        ["git", "ls-remote", url, ref], LS_REMOTE_TIMEOUT_S,
        f"could not fetch the workshop files from {url} at {ref}: the "
        "repository did not answer", fix,
    )
    if not result.stdout.strip():
        raise SetupError(
            f"{url} has no tag or branch {ref!r}: release {ref} is not on the "
            "repository (the connection works)",
            missing_ref_fix(url, ref),
        )


def clone(url, ref, destination):
    """Clone ``url`` at ``ref`` into ``destination``.

    A tag or branch is checked with ``git ls-remote`` first, then fetched with
    ``git clone --depth 1 --branch``; a commit needs a full clone and a
    checkout.
    """
    fix = (
        "fetch by hand: "
        f"git clone --branch {ref} {url} workshop && "
        f"cp -r {' '.join('workshop/' + item for item in WORKSHOP_ITEMS)} ."
    )
    what = f"could not fetch the workshop files from {url} at {ref}"
    if shutil.which("git") is None:
        raise SetupError(f"{what}: git is not installed",
                         "install git (apt-get install git) and run again")
    if COMMIT.fullmatch(ref) is None:
        check_ref(url, ref, "check the internet connection (and WORKSHOP_REPO_URL, "
                  "if set) and run the set-up again, or " + fix)
        print(f"fetching the workshop files from {url} at {ref} ...", flush=True)
        run_command(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", ref, url,
             str(destination)],
            GIT_TIMEOUT_S, what, "run the set-up again, or " + fix,
        )
        return
    print(f"fetching {url} (full history, for commit {ref}) ...", flush=True)
    run_command(["git", "clone", "--quiet", url, str(destination)],
                GIT_TIMEOUT_S, what, "check the internet connection, or " + fix)
    run_command(["git", "-C", str(destination), "checkout", "--quiet", ref],
                GIT_TIMEOUT_S, f"{what}: no such commit", missing_ref_fix(url, ref))


def set_aside(target, found):
    """Move the workshop files of another release out of the way.

    Args:
        target: the working directory holding them.
        found: their version, or None when they have none.

    Returns:
        The folder they were moved to (nothing is deleted).
    """
    folder = target / f"workshop-old-{found or 'unversioned'}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = target / f"workshop-old-{found or 'unversioned'}-{suffix}"
    folder.mkdir()
    for item in (*WORKSHOP_ITEMS, BONUS_REQUIREMENTS):
        if (target / item).exists():
            os.replace(target / item, folder / item)
    return folder


def fetch_workshop_files(target, url, ref):
    """Copy the workshop items that ``target`` lacks from the repository.

    Args:
        target: directory to complete (the notebook's working directory).
        url: repository address (GitHub or a local clone).
        ref: tag, branch or commit.

    Returns:
        Names of the items copied; empty when nothing was absent (then no
        network is used).

    Raises:
        SetupError: git failed, or the repository lacks an item.
    """
    absent = [item for item in WORKSHOP_ITEMS if not (target / item).exists()]
    if not absent:
        return []
    copied = []
    with tempfile.TemporaryDirectory(prefix="workshop-") as scratch:
        checkout = pathlib.Path(scratch) / "repo"
        clone(url, ref, checkout)
        wanted = absent + [i for i in OPTIONAL_ITEMS if not (target / i).exists()]
        lacking = [item for item in absent if not (checkout / item).exists()]
        if lacking:
            raise SetupError(
                f"the repository {url} at {ref} has no {', '.join(lacking)}",
                "set WORKSHOP_REF to a release that has it, or report this",
            )
        for item in wanted:
            source = checkout / item
            if not source.exists():  # an optional item
                continue
            staged = target / f".{item}.partial"
            shutil.rmtree(staged, ignore_errors=True)
            if source.is_dir():
                shutil.copytree(source, staged)
            else:
                shutil.copy2(source, staged)
            os.replace(staged, target / item)  # appears whole or not at all
            copied.append(item)
    return copied


def pip_install(specs, colab):
    """Install ``specs`` with pip (or the command in ``WORKSHOP_PIP``)."""
    override = os.environ.get("WORKSHOP_PIP")
    pip = shlex.split(override) if override else [sys.executable, "-m", "pip"]
    run_command(pip + ["install", *specs], PIP_TIMEOUT_S,
                f"could not install {', '.join(specs)}", pip_fix(specs, colab))
    importlib.invalidate_caches()


def enable_widgets():
    """Switch on Colab's custom widget manager when ipywidgets 8 needs it.

    Returns:
        One line for the report.
    """
    version = installed_version("ipywidgets")
    if version is None:
        return "ipywidgets not installed"
    if version_tuple(version) < (8,):
        return f"ipywidgets {version} (Colab's built-in widget support)"
    from google.colab import output

    output.enable_custom_widget_manager()
    return f"ipywidgets {version} (custom widget manager enabled)"


def describe_device():
    """Return ``(torch_version, device)`` as strings for the report."""
    import torch

    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = "mps (Apple GPU)"
    else:
        device = "cpu"
    return torch.__version__, device


def find_target(colab):
    """Return the directory that holds (or will hold) ``helpers/``.

    In Colab that is the working directory. Elsewhere it is this script's
    directory when ``helpers/`` is there (a clone, also when a notebook in a
    sub-folder runs ``../setup_colab.py``), else the working directory.
    """
    cwd = pathlib.Path.cwd()
    if colab:
        return cwd
    here = pathlib.Path(__file__).resolve().parent
    return here if (here / "helpers").is_dir() else cwd


def make_importable(target, expected=None):
    """Put ``target`` first on ``sys.path`` (once) and import ``helpers``.

    Args:
        target: the directory holding ``helpers/``.
        expected: the version ``helpers`` must have (None: any).

    Returns:
        The folder and version of the imported package, for the report.

    Raises:
        SetupError: the import failed, or this process imported another
            version of ``helpers`` earlier (it keeps that code until restart).
    """
    if not any(pathlib.Path(entry or ".").resolve() == target for entry in sys.path):
        sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        helpers = importlib.import_module("helpers")
    except Exception as error:  # noqa: BLE001 - any failure: say why, no trace
        raise SetupError(
            f"'import helpers' failed: {type(error).__name__}: {error}",
            "run the set-up again; if it persists, delete the helpers folder "
            "so that a fresh copy is fetched",
        )
    version = getattr(helpers, "__version__", None)
    if expected is not None and version != expected:
        raise SetupError(
            f"this runtime imported helpers {version or '(no version)'} earlier; "
            f"Python keeps that code, not release {expected}",
            "Runtime > Restart session, then run the set-up cell again",
        )
    return f"{next(iter(helpers.__path__))} (version {version or 'unknown'})"


def run_setup():
    """Do the whole set-up; return the report lines and the problems found."""
    started = time.perf_counter()
    colab = in_colab()
    target = find_target(colab).resolve()
    pretend = os.environ.get("WORKSHOP_PRETEND_MISSING", "")
    pretend_missing = frozenset(normalise(n) for n in pretend.split(",") if n.strip())
    problems, installed = [], "nothing (all present)"

    expected = release_version(workshop_ref())
    if colab:
        found = files_version(target)
        moved = None
        if expected and (target / "helpers").is_dir() and found != expected:
            moved = set_aside(target, found)
        copied = fetch_workshop_files(target, repo_url(), workshop_ref())
        files = (f"fetched {', '.join(copied)} from {repo_url()} at {workshop_ref()}"
                 if copied else "all present, nothing fetched")
        if moved is not None:
            files += (f" (release {expected}; those of {found or 'an older release'}"
                      f" moved to {moved.name}/)")
        fetched = files_version(target)
        if expected and fetched != expected:
            raise SetupError(
                f"{repo_url()} at {workshop_ref()} holds helpers version "
                f"{fetched or 'unknown (before 1.1.0)'}, not {expected}: the tag "
                "points at a commit before that release's version change",
                "maintainers: move the tag to the release commit (tools/release.py "
                "makes both); learners: report this, and meanwhile set %env "
                "WORKSHOP_REF=main and run the set-up again",
            )
    elif not (target / "helpers").is_dir():
        name = REPO_URL.rsplit("/", 1)[-1]
        raise SetupError(
            f"no helpers/ folder next to {__file__} or in {target}",
            f"work in a clone: git clone {REPO_URL} && cd {name}",
        )
    else:
        files = f"local copy in {target}"

    requirements_file = target / "requirements.txt"
    if not requirements_file.is_file():
        source = raw_file_url("requirements.txt", workshop_ref(), repo_url())
        raise SetupError(f"{requirements_file} is missing", f"fetch it from {source}")
    requirements = read_requirements(requirements_file)
    if (target / BONUS_REQUIREMENTS).is_file():
        requirements += read_requirements(target / BONUS_REQUIREMENTS)
    to_install, refused = plan_installs(requirements, colab, pretend_missing)
    problems.extend(refused)
    # A package imported before it was upgraded keeps its old code until restart.
    restart = [item for item in to_install if item.split(">=")[0] in sys.modules]
    if to_install:
        try:
            pip_install(to_install, colab)
            installed = ", ".join(to_install)
        except SetupError as error:
            problems.append(error)
            installed = "nothing (pip failed)"

    lines = [f"files: {files}"]
    try:
        lines.append(f"helpers: {make_importable(target, expected)}")
        torch_version, device = describe_device()
    except SetupError as error:
        problems.append(error)
        torch_version, device = "?", "?"
    except ImportError as error:
        problems.append(SetupError(f"'import torch' failed: {error}",
                                   "see the torch line above"))
        torch_version, device = "not importable", "?"
    if colab:
        lines.append(f"widgets: {enable_widgets()}")
    lines.append(f"installed: {installed}")
    if restart:
        lines.append(f"restart the runtime: {', '.join(restart)} was already imported")
    python = sys.version.split()[0]
    where = "Colab" if colab else "local"
    head = (f"Workshop set-up ({where}): Python {python} | torch {torch_version}"
            f" | device: {device} | {time.perf_counter() - started:.1f} s")
    return [head] + ["  " + line for line in lines], problems


def main():
    """Run the set-up, print the report, raise SystemExit(1) on failure."""
    try:
        lines, problems = run_setup()
    except SetupError as error:
        lines, problems = [], [error]
    except ValueError as error:  # a malformed requirements.txt
        lines, problems = [], [SetupError(str(error), "fix requirements.txt")]
    if lines:
        print("\n".join(lines), flush=True)
    if problems:
        print("\nSET-UP FAILED", flush=True)
        for problem in problems:
            print(f"  - {problem.what}", flush=True)
            for line in problem.detail.splitlines():
                print(f"      {line}", flush=True)
            print(f"    fix: {problem.fix}", flush=True)
        raise SystemExit(
            f"Workshop set-up failed: {problems[0].what} (details and fixes above)"
        )


if __name__ == "__main__":
    main()
