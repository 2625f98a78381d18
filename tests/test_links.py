"""Every relative link and image in the bundle's markdown points at a real file.

Markdown files are checked as GitHub shows them: a target is relative to the
folder of the file that holds it. Notebook sources (``notebooks/**/*.py``)
are checked as ``tools/build_notebooks.py`` builds them: only markdown cells
count; a link to ``pictures/NAME.png`` (also written ``../pictures/NAME.png``)
is read from the repository's ``pictures/`` folder and embedded as an
attachment; any other target stays a link in the generated notebook and is
therefore relative to that notebook's folder (the repository root for the
practicals, ``bonus/`` for the ICU notebook).

Web addresses (http, https), ``mailto:``, ``attachment:`` and in-page
``#anchors`` are not files and are skipped; any other scheme is reported.
"""

import fnmatch
import pathlib
import re
import urllib.parse

import pytest

import build_notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]

MARKDOWN_FILES = [
    "README.md",
    "elephant/README.md",
    "pictures/README.md",
    "data/README.md",
    "benchmarks/README.md",
]
MARKDOWN_GLOBS = ["blogpost/*.md", "resources/*.md"]
SOURCE_GLOB = "notebooks/**/*.py"

SKIPPED_SCHEMES = ("http", "https", "mailto", "attachment")

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
# ``](target)`` ends every inline link and image, also an image inside a link
INLINE_TARGET = re.compile(r"\]\(\s*(<[^>\n]*>|[^)\s]*)")
REFERENCE_TARGET = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)", re.MULTILINE)
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def link_targets(markdown):
    """Return the link and image targets of a markdown text, in order.

    Code blocks and code spans are left out: text there is not a link. Angle
    brackets around a target are removed.

    Args:
        markdown: the text.

    Returns:
        A list of target strings exactly as written (anchors included).
    """
    text = FENCE.sub("", markdown)
    text = CODE_SPAN.sub("code", text)
    found = [
        (match.start(), match.group(1))
        for pattern in (INLINE_TARGET, REFERENCE_TARGET)
        for match in pattern.finditer(text)
    ]
    return [target.strip("<>") for _, target in sorted(found)]


def local_path(target):
    """Return the file part of a relative target, or None when it is no file.

    Raises:
        ValueError: for a scheme other than those in ``SKIPPED_SCHEMES``.
    """
    scheme = SCHEME.match(target)
    if scheme:
        if scheme.group(1).lower() in SKIPPED_SCHEMES:
            return None
        raise ValueError(
            f"target {target!r} uses the scheme {scheme.group(1)!r}; allowed are "
            f"relative paths and the schemes {', '.join(SKIPPED_SCHEMES)}"
        )
    if target.startswith("#"):
        return None
    return urllib.parse.unquote(re.split(r"[#?]", target, maxsplit=1)[0])


def broken_targets(targets, resolve):
    """Return ``"target (reason)"`` for each target that names no file.

    Args:
        targets: link targets as written.
        resolve: maps a target's file part to the path it must exist at.
    """
    broken = []
    for target in targets:
        try:
            path = local_path(target)
        except ValueError as error:
            broken.append(f"{target} ({error})")
            continue
        if path is None:
            continue
        if not path:
            broken.append(f"{target!r} (empty target)")
            continue
        resolved = resolve(path).resolve()
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (resolves outside the repository: {resolved})")
        elif not resolved.exists():
            shown = resolved.relative_to(ROOT).as_posix()
            broken.append(f"{target} (no file {shown})")
    return broken


def notebook_folder(source):
    """Folder of the notebook built from ``source``, relative to the root.

    A source that no build target takes is treated as living at the root.
    """
    name = source.relative_to(ROOT).as_posix()
    for target in build_notebooks.TARGETS:
        if fnmatch.fnmatch(name, target.sources):
            return pathlib.PurePosixPath(target.path).parent
    return pathlib.PurePosixPath(".")


def source_markdown(source):
    """The markdown cells of a percent-format notebook source, joined."""
    cells = build_notebooks.parse_source(
        source.read_text(encoding="utf-8"), source.relative_to(ROOT).as_posix()
    )
    return "\n\n".join(cell.source for cell in cells if cell.kind == "markdown")


def resolve_in_notebook(source):
    """Return the resolver for targets in the notebook built from ``source``."""
    folder = ROOT / notebook_folder(source)

    def resolve(path):
        picture = build_notebooks.PICTURE_LINK.fullmatch(f"]({path})")
        if picture:  # embedded from the root's pictures/ by the builder
            return ROOT / "pictures" / picture.group("name")
        return folder / path

    return resolve


def markdown_files():
    files = [ROOT / name for name in MARKDOWN_FILES]
    for pattern in MARKDOWN_GLOBS:
        files.extend(sorted(ROOT.glob(pattern)))
    return files


def relative_name(path):
    return path.relative_to(ROOT).as_posix()


SOURCES = sorted(ROOT.glob(SOURCE_GLOB))


# --- the checks on the bundle -----------------------------------------------


@pytest.mark.parametrize("path", markdown_files(), ids=relative_name)
def test_markdown_links_point_at_existing_files(path):
    assert path.is_file(), f"{relative_name(path)} is missing"
    targets = link_targets(path.read_text(encoding="utf-8"))
    broken = broken_targets(targets, lambda target: path.parent / target)
    assert not broken, f"{relative_name(path)} has broken links:\n  " + "\n  ".join(
        broken
    )


@pytest.mark.parametrize("source", SOURCES, ids=relative_name)
def test_notebook_source_links_point_at_existing_files(source):
    targets = link_targets(source_markdown(source))
    broken = broken_targets(targets, resolve_in_notebook(source))
    assert not broken, (
        f"{relative_name(source)} (built into "
        f"{notebook_folder(source)}/) has broken links:\n  " + "\n  ".join(broken)
    )


def test_the_scan_sees_the_links_the_bundle_relies_on():
    blog = (ROOT / "blogpost" / "What_is_differentiable_programming.md").read_text(
        encoding="utf-8"
    )
    assert "../pictures/coordinate_system.png" in link_targets(blog)
    assert "../resources/FurtherReading.md" in link_targets(blog)
    part_two = ROOT / "notebooks" / "practicals" / "20_part2_vae.py"
    assert "pictures/vae.png" in link_targets(source_markdown(part_two))
    assert SOURCES, "no notebook sources found under notebooks/"


def test_notebook_sources_resolve_like_the_builder():
    practical = ROOT / "notebooks" / "practicals" / "10_part1_autodiff.py"
    icu = ROOT / "notebooks" / "icu_missing_reports.py"
    assert notebook_folder(practical) == pathlib.PurePosixPath(".")
    assert notebook_folder(icu) == pathlib.PurePosixPath("bonus")
    resolve = resolve_in_notebook(icu)
    # pictures are embedded from the root's folder however they are written
    for written in ("pictures/vae.png", "../pictures/vae.png"):
        assert resolve(written) == ROOT / "pictures" / "vae.png"
    # other links stay links, relative to bonus/
    assert resolve("../data/README.md") == ROOT / "bonus" / "../data/README.md"


# --- the link scanner itself ---------------------------------------------------


def test_link_targets_finds_links_images_and_references():
    text = (
        "See [the notes](notes.md#part-2 \"title\") and ![a plot](img/a.png).\n"
        "[![badge](https://example.org/b.svg)](../other/page.md)\n"
        "A [link over\ntwo lines](two%20words.md) and [ref][r].\n"
        "\n"
        "[r]: <ref target.md>\n"
    )
    assert link_targets(text) == [
        "notes.md#part-2",
        "img/a.png",
        "https://example.org/b.svg",
        "../other/page.md",
        "two%20words.md",
        "ref target.md",
    ]


def test_link_targets_ignores_code():
    text = (
        "Write `[x](in_code.md)` or ``[y](double`tick.md)``.\n"
        "```markdown\n[z](fenced.md)\n```\n"
        "~~~\n![w](tilde.png)\n~~~\n"
        "[`code as text`](real.md)\n"
    )
    assert link_targets(text) == ["real.md"]


def test_broken_targets_reports_missing_files_and_skips_web_links():
    targets = [
        "README.md#anchor",
        "pictures/vae.png?raw=true",
        "https://example.org/x",
        "mailto:someone@example.org",
        "attachment:vae.png",
        "#top",
        "no_such_picture.png",
        "ftp://example.org/file",
        "",
    ]
    broken = broken_targets(targets, lambda path: ROOT / path)
    assert broken == [
        "no_such_picture.png (no file no_such_picture.png)",
        (
            "ftp://example.org/file (target 'ftp://example.org/file' uses the "
            "scheme 'ftp'; allowed are relative paths and the schemes http, "
            "https, mailto, attachment)"
        ),
        "'' (empty target)",
    ]


def test_broken_targets_refuses_paths_outside_the_repository():
    broken = broken_targets(["../../x.md"], lambda path: ROOT / path)
    assert len(broken) == 1
    assert "outside the repository" in broken[0]
