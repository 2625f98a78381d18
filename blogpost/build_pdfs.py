"""Build a PDF of every Markdown file in blogpost/ (for printing the reading).

The PDFs are committed, so nobody needs this script to read them. To rebuild
them after editing the Markdown, install two build-only wheels (they are not
workshop dependencies and bring no system packages):

    pip install pypandoc-binary typst
    python blogpost/build_pdfs.py

Pandoc (shipped inside ``pypandoc-binary``) turns the Markdown into Typst
markup, and the Typst compiler (the ``typst`` wheel, with its own fonts)
typesets it. Pictures are taken from ``pictures/`` as the Markdown references
them, so the PDFs show exactly the figures that ``pictures/make_pictures.py``
draws.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path

BLOGPOST_DIR = Path(__file__).resolve().parent
REPO_ROOT = BLOGPOST_DIR.parent
PANDOC_OPTIONS = [
    "--standalone",
    "--variable=papersize:a4",
    "--variable=fontsize:11pt",
    "--variable=mainfont:Libertinus Serif",
]


def _require(module_name: str, pip_name: str):
    """Import a build-only module or explain how to install it."""
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(
            f"building the PDFs needs the '{pip_name}' package: "
            f"pip install pypandoc-binary typst"
        ) from error


def build_pdf(markdown_path: Path) -> Path:
    """Typeset one Markdown file as a PDF next to it.

    Args:
        markdown_path: a ``.md`` file inside ``blogpost/``.

    Returns:
        Path of the written PDF.
    """
    pypandoc = _require("pypandoc", "pypandoc-binary")
    typst = _require("typst", "typst")
    markdown_path = Path(markdown_path).resolve()
    if markdown_path.suffix != ".md" or not markdown_path.is_file():
        raise ValueError(
            f"markdown_path must be an existing .md file, got {markdown_path}"
        )
    typst_source = pypandoc.convert_file(
        str(markdown_path),
        to="typst",
        format="gfm",
        extra_args=PANDOC_OPTIONS,
    )
    # Typst resolves image paths relative to the source file, so the source
    # sits next to the Markdown while it is compiled.
    source_path = markdown_path.with_suffix(".typ")
    pdf_path = markdown_path.with_suffix(".pdf")
    source_path.write_text(typst_source, encoding="utf-8")
    try:
        typst.compile(str(source_path), output=str(pdf_path), root=str(REPO_ROOT))
    finally:
        source_path.unlink()
    return pdf_path


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Build the PDFs of the given Markdown files (default: all in blogpost/)."""
    parser = argparse.ArgumentParser(description="Build the blog post PDFs.")
    parser.add_argument("files", nargs="*", type=Path, help="default: blogpost/*.md")
    args = parser.parse_args(argv)
    files = args.files or sorted(
        path for path in BLOGPOST_DIR.glob("*.md") if path.name != "README.md"
    )
    written = [build_pdf(path) for path in files]
    for path in written:
        print(f"saved {path}")
    return written


if __name__ == "__main__":
    main()
