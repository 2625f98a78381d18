"""Tests of tools/release.py: its rules, and a whole release of a temporary
clone, pushed to a bare repository standing in for GitHub and verified."""

import pathlib
import subprocess

import pytest

import colab_emulation
import release

ROOT = pathlib.Path(__file__).resolve().parents[1]
CURRENT = release.read_version(ROOT)
MAJOR, MINOR, PATCH = release.parse_version(CURRENT)
NEXT = f"{MAJOR}.{MINOR}.{PATCH + 1}"


@pytest.mark.parametrize("text", ["1.1", "v1.1.0", "1.1.0rc1", "", "1.1.0 "])
def test_version_must_be_three_numbers(text):
    with pytest.raises(ValueError, match=rf"version={text!r} is not X\.Y\.Z"):
        release.parse_version(text)


CHANGELOG = """# Changelog

## Unreleased

- a change

## 1.0.0 (2026-11)

- first
"""


def test_unreleased_section_becomes_the_entry():
    text, notes = release.release_changelog(CHANGELOG, "1.0.1", "2026-12-04")
    assert notes == "- a change"
    assert text == CHANGELOG.replace("## Unreleased", "## 1.0.1 (2026-12-04)")
    assert release.changelog_titles(text) == ["1.0.1 (2026-12-04)", "1.0.0 (2026-11)"]
    assert release.changelog_versions(text) == ["1.0.1", "1.0.0"]


@pytest.mark.parametrize(("text", "message"), [
    (CHANGELOG.replace("- a change\n", ""), "'## Unreleased' section is empty"),
    (CHANGELOG.replace("## Unreleased", "## Next"), "has no '## Unreleased'")])
def test_changelog_without_notes_is_refused(text, message):
    with pytest.raises(release.ReleaseError, match=message):
        release.release_changelog(text, "1.0.1", "2026-12-04")


@pytest.fixture
def github(tmp_path, monkeypatch):
    """A bare copy of this working tree (no tag), and a clone of it on main."""
    bare = colab_emulation.make_github(tmp_path / "github", None)
    for name in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{name}_NAME", "test")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (tmp_path / "gitconfig").write_text("[advice]\n\tdetachedHead = false\n")
    clone = tmp_path / "clone"
    colab_emulation.git("clone", "--quiet", str(bare), str(clone))
    changelog = clone / "CHANGELOG.md"
    if "\n## Unreleased\n" not in changelog.read_text():
        # right after a release: write the next release's notes, as a
        # maintainer does before releasing
        text = changelog.read_text()
        first = text.index("\n## ") + 1
        changelog.write_text(text[:first] + "## Unreleased\n\n- a test change\n\n"
                             + text[first:])
        git(clone, "commit", "--quiet", "-am", "CHANGELOG: notes of the next release")
        git(clone, "push", "--quiet", "origin", "main")
    return bare, clone


def git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_release_refuses_a_wrong_start(github):
    _, clone = github
    with pytest.raises(release.ReleaseError, match=f"{CURRENT} is not above"):
        release.check_start(clone, CURRENT)
    (clone / "scratch.txt").write_text("x")
    with pytest.raises(release.ReleaseError, match="uncommitted changes"):
        release.check_start(clone, NEXT)
    (clone / "scratch.txt").unlink()
    git(clone, "switch", "--quiet", "-c", "topic")
    with pytest.raises(release.ReleaseError, match="on branch 'topic'"):
        release.check_start(clone, NEXT)
    git(clone, "switch", "--quiet", "main")
    git(clone, "tag", f"v{NEXT}")
    with pytest.raises(release.ReleaseError, match=f"tag v{NEXT} exists"):
        release.check_start(clone, NEXT)


def offline_fetch(bare):
    """Answer raw.githubusercontent.com addresses from ``bare``."""
    def fetch(url):
        ref, path = url.split("/", 6)[5:]
        shown = subprocess.run(["git", "--git-dir", str(bare), "show",
                                f"{ref}:{path}"], capture_output=True, check=False)
        if shown.returncode != 0:
            raise FileNotFoundError(f"HTTP Error 404: {url}")
        return shown.stdout
    return fetch


def test_release_of_a_clone_is_one_commit_one_tag_and_one_push(github, capsys):
    bare, clone = github
    before = git(clone, "rev-parse", "HEAD")
    assert release.main([NEXT, "--root", str(clone), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert f"git push --atomic origin main v{NEXT}" in printed
    assert git(clone, "rev-parse", "HEAD~1") == before
    assert git(clone, "log", "-1", "--format=%s") == f"Release v{NEXT}"
    assert git(clone, "rev-parse", f"v{NEXT}^{{commit}}") == git(
        clone, "rev-parse", "HEAD")
    assert git(clone, "status", "--porcelain") == ""
    assert release.read_version(clone) == NEXT
    assert release.read_ref(clone) == f"v{NEXT}"
    changelog = (clone / "CHANGELOG.md").read_text()
    assert release.changelog_versions(changelog)[:2] == [NEXT, CURRENT]
    assert {ref for _, _, ref, _ in release.badge_addresses(clone)} == {f"v{NEXT}"}
    # the notebooks were rebuilt: their set-up cells carry the new release
    colab = (clone / "Colab_Practicals.ipynb").read_text()
    assert f'RELEASE = \\"v{NEXT}\\"' in colab

    problems = release.verify(clone, offline_fetch(bare))
    assert any("does not have tag" in problem for problem in problems)
    assert any("HTTP Error 404" in problem for problem in problems)
    git(clone, "push", "--quiet", "--atomic", "origin", "main", f"v{NEXT}")
    assert release.verify(clone, offline_fetch(bare)) == []
    (clone / "README.md").write_text((clone / "README.md").read_text().replace(
        f"/blob/v{NEXT}/", "/blob/main/", 1))
    assert release.verify(clone, offline_fetch(bare)) == [
        f"README.md: badge of Colab_Practicals.ipynb opens main, not v{NEXT}"]
