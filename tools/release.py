"""Make a release of the workshop: one version number in every place.

A release ties together the notebooks (the Colab badges open them at the
tag), the set-up they run and the ``helpers`` they import (both fetched at
the same tag). This command:

1. checks that the repository is on ``main``, clean, and that the version
   is new and higher than the current one;
2. sets the version in ``helpers/__init__.py`` (``__version__``),
   ``setup_colab.py`` (``WORKSHOP_REF = "vX.Y.Z"``), the README's Colab
   badges, and ``CHANGELOG.md`` (its ``## Unreleased`` section becomes the
   release's entry);
3. rebuilds the notebooks (``python tools/build_notebooks.py``), which
   stamps the release into every badge and set-up cell;
4. runs the offline checks (tests/test_release_consistency.py and the Colab
   emulation, tests/test_colab_emulation.py);
5. commits, tags ``vX.Y.Z``, and prints the one push that publishes both:
   ``git push --atomic origin main vX.Y.Z``.

Usage::

    python tools/release.py 1.1.0            # make release 1.1.0
    python tools/release.py 1.1.0 --dry-run  # the same in a temporary clone
    python tools/release.py --verify         # after the push (online)

``--verify`` downloads, for every Colab badge of the README and the
notebooks, the notebook at the tag from raw.githubusercontent.com, with the
files its set-up fetches, and compares them with the local tag; it also
checks that GitHub's tag is the local one. ``--root`` and ``--quick`` (only
the consistency checks) are for tests, which release a temporary clone.
"""

import argparse
import datetime
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import urllib.request

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
VERSION_LINE = re.compile(r'^__version__ = "(?P<version>[^"]*)"$', re.MULTILINE)
REF_LINE = re.compile(r'^WORKSHOP_REF = "(?P<ref>[^"]*)"$', re.MULTILINE)
CHANGELOG_HEADING = re.compile(r"^## (?P<title>.+?)[ \t]*$", re.MULTILINE)
BADGE = re.compile(r"https://colab\.research\.google\.com/github/"
                   r"(?P<slug>[^/\s]+/[^/\s]+)/blob/(?P<ref>[^/\s]+)/"
                   r"(?P<path>[^)\s\"']+\.ipynb)")
CHECKS = ("tests/test_release_consistency.py", "tests/test_colab_emulation.py")
QUICK_CHECKS = ("tests/test_release_consistency.py",)
# The files the Colab set-up fetches at the tag, checked by --verify.
SETUP_FILES = ("setup_colab.py", "requirements.txt", "helpers/__init__.py")


class ReleaseError(Exception):
    """A release step that cannot go on; the message says how to fix it."""


def parse_version(text):
    """Return ``text`` as a tuple of three numbers.

    Raises:
        ValueError: ``text`` is not ``X.Y.Z`` (a leading ``v`` is refused too).
    """
    match = VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"version={text!r} is not X.Y.Z; write it like 1.1.0 "
                         "(no leading 'v': the tag gets it)")
    return tuple(int(part) for part in match.groups())


def read_version(root):
    """Return ``helpers.__version__`` of the tree at ``root``, read as text."""
    init = pathlib.Path(root) / "helpers" / "__init__.py"
    match = VERSION_LINE.search(init.read_text(encoding="utf-8"))
    if match is None:
        raise ReleaseError(f'{init} has no line __version__ = "X.Y.Z"')
    return match.group("version")


def read_ref(root):
    """Return ``WORKSHOP_REF`` of ``setup_colab.py`` in the tree at ``root``."""
    script = pathlib.Path(root) / "setup_colab.py"
    match = REF_LINE.search(script.read_text(encoding="utf-8"))
    if match is None:
        raise ReleaseError(f'{script} has no line WORKSHOP_REF = "vX.Y.Z"')
    return match.group("ref")


def changelog_titles(text):
    """Return the ``## `` headings of a changelog, top first."""
    return [match.group("title") for match in CHANGELOG_HEADING.finditer(text)]


def changelog_versions(text):
    """Return the versions of a changelog's entries, newest first.

    A heading ``## 1.1.0 (2026-12-04)`` gives ``"1.1.0"``; ``## Unreleased``
    is no version and is left out.
    """
    versions = []
    for title in changelog_titles(text):
        match = VERSION.match(title)
        if match is not None:
            versions.append(match.group(0))
    return versions


def release_changelog(text, version, date):
    """Turn the ``## Unreleased`` section into the entry of ``version``.

    Returns:
        ``(text, notes)``: the new changelog and the entry's text.

    Raises:
        ReleaseError: there is no ``## Unreleased`` section, or it is empty.
    """
    match = re.search(r"^## Unreleased[ \t]*$", text, re.MULTILINE)
    if match is None:
        raise ReleaseError("CHANGELOG.md has no '## Unreleased' section; add one "
                           "that says what changed in this release")
    after = CHANGELOG_HEADING.search(text, match.end())
    notes = text[match.end():after.start() if after else len(text)].strip()
    if not notes:
        raise ReleaseError("CHANGELOG.md's '## Unreleased' section is empty; "
                           "write what changed before releasing")
    heading = f"## {version} ({date})"
    return text[:match.start()] + heading + text[match.end():], notes


def replace_once(pattern, replacement, text, name):
    """Replace the one match of ``pattern``; refuse none or several."""
    new, count = pattern.subn(replacement, text)
    if count != 1:
        raise ReleaseError(f"{name}: expected one match of {pattern.pattern!r}, "
                           f"found {count}")
    return new


def bump(root, version, date):
    """Write ``version`` into every file that names the release.

    Returns:
        The changelog notes of the release (for the commit message).
    """
    root = pathlib.Path(root)
    tag = f"v{version}"
    edits = {}
    init = root / "helpers" / "__init__.py"
    edits[init] = replace_once(VERSION_LINE, f'__version__ = "{version}"',
                               init.read_text(encoding="utf-8"), init.name)
    script = root / "setup_colab.py"
    edits[script] = replace_once(REF_LINE, f'WORKSHOP_REF = "{tag}"',
                                 script.read_text(encoding="utf-8"), script.name)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    new, count = BADGE.subn(
        lambda m: m.group(0).replace(f"/blob/{m.group('ref')}/", f"/blob/{tag}/"),
        text)
    if count == 0:
        raise ReleaseError("README.md has no Colab badge to point at the release")
    edits[readme] = new
    changelog = root / "CHANGELOG.md"
    edits[changelog], notes = release_changelog(
        changelog.read_text(encoding="utf-8"), version, date)
    for path, text in edits.items():
        path.write_text(text, encoding="utf-8", newline="\n")
    return notes


def git(root, *args, check=True):
    """Run git in ``root``; return stdout, or raise ReleaseError on failure."""
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                            text=True, check=False)
    if check and result.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def check_start(root, version):
    """Refuse to release from a state that would make a wrong release."""
    branch = git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if branch != "main":
        raise ReleaseError(f"on branch {branch!r}; release from main: git switch "
                           "main && git pull")
    if git(root, "status", "--porcelain"):
        raise ReleaseError("the working tree has uncommitted changes; commit or "
                           "stash them first (git status)")
    if git(root, "rev-parse", "-q", "--verify", f"refs/tags/v{version}", check=False):
        raise ReleaseError(f"tag v{version} exists already; choose the next version")
    current = read_version(root)
    if parse_version(version) <= parse_version(current):
        raise ReleaseError(f"version {version} is not above the current {current}")


def run(command, root, what):
    """Run a command in ``root`` with its output shown; raise if it fails."""
    print(f"$ {' '.join(command)}", flush=True)
    if subprocess.run(command, cwd=root, check=False).returncode != 0:
        raise ReleaseError(
            f"{what} failed; the version changes are left uncommitted in {root}: "
            "fix and run again after 'git checkout -- .', or keep them and "
            "finish by hand")


def release(root, version, quick=False, date=None):
    """Make release ``version`` in the repository at ``root``.

    Args:
        root: the repository (on main, clean).
        version: ``"X.Y.Z"``.
        quick: run only the consistency checks (for tests of this command).
        date: the changelog date (default: today), ``YYYY-MM-DD``.

    Returns:
        The push command that publishes the release.
    """
    parse_version(version)
    root = pathlib.Path(root).resolve()
    check_start(root, version)
    date = date or datetime.date.today().isoformat()
    notes = bump(root, version, date)
    run([sys.executable, str(root / "tools" / "build_notebooks.py")], root,
        "rebuilding the notebooks")
    run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *(QUICK_CHECKS if quick else CHECKS)], root, "the offline checks")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", f"Release v{version}", "-m", notes)
    git(root, "tag", "-a", f"v{version}", "-m", f"Release {version}\n\n{notes}")
    return f"git push --atomic origin main v{version}"


def dry_run(root, version, quick=False):
    """Make the release in a temporary clone of ``root``; leave ``root`` alone.

    The clone's ``main`` is the commit checked out in ``root``, so that a
    topic branch can be tried before it is merged.
    """
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        clone = pathlib.Path(scratch) / "repo"
        head = git(root, "rev-parse", "HEAD")
        git(root, "clone", "--quiet", "--no-checkout", str(root), str(clone))
        git(clone, "checkout", "--quiet", "-B", "main", head)
        branch = git(root, "rev-parse", "--abbrev-ref", "HEAD")
        if branch != "main":
            print(f"note: the dry run releases {branch} ({head[:12]}) as main")
        if git(root, "status", "--porcelain"):
            print("note: uncommitted changes are not part of the dry run")
        push = release(clone, version, quick)
        print(git(clone, "show", "--stat", "--format=%H %s", "HEAD"))
        print(f"dry run passed; the release would be published with: {push}")


def badge_addresses(root):
    """Return every Colab badge address of the README and the notebooks.

    Returns:
        ``(where, slug, ref, path)`` for each address.
    """
    root = pathlib.Path(root)
    found = []
    files = [root / "README.md", *sorted(root.glob("*.ipynb")),
             *sorted(root.glob("*/*.ipynb"))]
    for file in files:
        for match in BADGE.finditer(file.read_text(encoding="utf-8")):
            found.append((file.relative_to(root).as_posix(), match.group("slug"),
                          match.group("ref"), match.group("path")))
    return found


def fetch_url(url):
    """Return the bytes at ``url`` (raises OSError when it does not answer)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def verify(root, fetch=fetch_url, remote="origin"):
    """Check online that every badge opens the release and its set-up works.

    Args:
        root: the repository holding the release tag.
        fetch: returns the bytes of a URL (tests pass an offline one).
        remote: the git remote that stands for GitHub.

    Returns:
        A list of problems, empty when every address answers with the files
        of the local tag.
    """
    root = pathlib.Path(root)
    tag = read_ref(root)
    problems = []
    local = git(root, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}",
                check=False)
    published = git(root, "ls-remote", remote, f"refs/tags/{tag}^{{}}",
                    f"refs/tags/{tag}", check=False).split()
    if not local:
        problems.append(f"no local tag {tag}: make the release first")
    elif local not in published:
        problems.append(f"{remote} does not have tag {tag} at {local[:12]}: "
                        f"git push --atomic {remote} main {tag}")
    wanted = {(slug, path) for _, slug, _, path in badge_addresses(root)}
    for where, slug, ref, path in badge_addresses(root):
        if ref != tag:
            problems.append(f"{where}: badge of {path} opens {ref}, not {tag}")
    slugs = {slug for slug, _ in wanted}
    files = {(slug, path) for slug, path in wanted}
    files |= {(slug, path) for slug in slugs for path in SETUP_FILES}
    for slug, path in sorted(files):
        url = f"https://raw.githubusercontent.com/{slug}/{tag}/{path}"
        try:
            remote_bytes = fetch(url)
        except OSError as error:
            problems.append(f"{url}: {error}")
            continue
        expected = subprocess.run(["git", "-C", str(root), "show", f"{tag}:{path}"],
                                  capture_output=True, check=False).stdout
        if remote_bytes != expected:
            problems.append(f"{url} differs from {path} at the local tag {tag}")
    return problems


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", help="the new version, X.Y.Z")
    parser.add_argument("--dry-run", action="store_true",
                        help="release a temporary clone; change nothing here")
    parser.add_argument("--verify", action="store_true",
                        help="online: check every badge's address at the tag")
    parser.add_argument("--quick", action="store_true",
                        help="run only the consistency checks (for tests)")
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT,
                        help="the repository (default: this script's)")
    args = parser.parse_args(argv)
    try:
        if args.verify:
            problems = verify(args.root)
            for problem in problems:
                print(f"problem: {problem}", file=sys.stderr)
            print(json.dumps({"release": read_ref(args.root),
                              "problems": len(problems)}))
            return 1 if problems else 0
        if args.version is None:
            parser.error("give the new version (X.Y.Z), or --verify")
        if args.dry_run:
            dry_run(args.root, args.version, args.quick)
            return 0
        push = release(args.root, args.version, args.quick)
    except (ValueError, ReleaseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nRelease v{args.version} committed and tagged. Publish both with:\n"
          f"\n    {push}\n\nthen check every badge: python tools/release.py --verify")
    return 0


if __name__ == "__main__":
    sys.exit(main())
