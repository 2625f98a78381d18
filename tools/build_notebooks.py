"""Build the workshop notebooks from their percent-format sources.

The notebooks are generated, never edited by hand:

* ``Colab_Practicals.ipynb`` and ``Jupyter_Practicals.ipynb`` from
  ``notebooks/practicals/*.py`` (joined in file-name order). They differ only
  in the set-up: the Colab one has an "Open in Colab" badge on top and one
  cell that fetches and runs ``setup_colab.py``; the Jupyter one has local
  set-up notes and a cell that checks the imports.
* ``bonus/ICU_missing_reports.ipynb`` from ``notebooks/icu_missing_reports.py``
  (Colab style), when that source exists.
* ``bonus/Theophylline.ipynb`` from ``notebooks/theophylline.py`` (Colab
  style), when that source exists.

Source format: a line ``# %%`` starts a code cell, ``# %% [markdown]`` a
markdown cell (each line ``# text`` or a bare ``#``), and ``# %% [setup]``
marks where the set-up cells go (once per notebook). Sources hold no IPython
magics, so each also runs as a plain script. Cells after the set-up import
what they use themselves: the two set-up variants define different names.

Usage::

    python tools/build_notebooks.py          # rewrite the notebooks
    python tools/build_notebooks.py --check  # exit 1 naming stale notebooks
"""

import argparse
import base64
import dataclasses
import hashlib
import importlib.util
import json
import pathlib
import re
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

MARKER = re.compile(r"\s*#\s*%%")
VALID_MARKER = re.compile(r"# %%(?: \[(?P<kind>markdown|setup)\])?\s*")

# Fixed ids of the cells the builder adds; source cells get content hashes.
BADGE_ID = "colab-badge"
COLAB_SETUP_ID = "setup-colab"
JUPYTER_NOTES_ID = "setup-notes"
JUPYTER_CHECK_ID = "setup-check"
SETUP_IDS = (BADGE_ID, COLAB_SETUP_ID, JUPYTER_NOTES_ID, JUPYTER_CHECK_ID)

NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python",
                   "name": "python3"},
    "language_info": {"name": "python"},
}


@dataclasses.dataclass(frozen=True)
class Target:
    """One notebook to build.

    Attributes:
        path: notebook path relative to the repository root.
        sources: glob of its sources relative to the root, joined sorted.
        style: ``"colab"`` or ``"jupyter"``: which set-up cells it gets.
        required: whether a missing source is an error (else it is skipped).
    """

    path: str
    sources: str
    style: str
    required: bool = True


TARGETS = (
    Target("Colab_Practicals.ipynb", "notebooks/practicals/*.py", "colab"),
    Target("Jupyter_Practicals.ipynb", "notebooks/practicals/*.py", "jupyter"),
    Target("bonus/ICU_missing_reports.ipynb", "notebooks/icu_missing_reports.py",
           "colab", required=False),
    Target("bonus/Stochastic_AD.ipynb", "notebooks/stochastic_ad.py", "colab",
           required=False),
    Target("bonus/Theophylline.ipynb", "notebooks/theophylline.py", "colab",
           required=False),
    Target("bonus/ADVI_dose_response.ipynb", "notebooks/advi_dose_response.py",
           "colab", required=False),
    Target("bonus/Counts_VAE.ipynb", "notebooks/counts_vae.py", "colab",
           required=False),
    Target("bonus/PBC_registry.ipynb", "notebooks/pbc_registry.py", "colab",
           required=False),
)


@dataclasses.dataclass(frozen=True)
class Cell:
    """A parsed source cell.

    Attributes:
        kind: ``"code"``, ``"markdown"`` or ``"setup"`` (the set-up marker).
        source: cell text without the marker; markdown without its ``# ``.
        origin: ``"file:line"`` of the marker, for error messages.
    """

    kind: str
    source: str
    origin: str


def _load_setup_colab():
    """Import setup_colab.py from the repository root (source of the URLs)."""
    spec = importlib.util.spec_from_file_location(
        "setup_colab", REPO_ROOT / "setup_colab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


setup_colab = _load_setup_colab()
# The release the notebooks belong to: badges open them at this tag, and their
# set-up cell fetches everything else at the same tag.
RELEASE = setup_colab.WORKSHOP_REF


def colab_badge_url(path, ref=RELEASE):
    """Return the address that opens ``path`` of the repository in Colab.

    Args:
        path: notebook path relative to the repository root.
        ref: the tag (or branch) to open it at.
    """
    slug = setup_colab.REPO_URL.removeprefix("https://github.com/").strip("/")
    return f"https://colab.research.google.com/github/{slug}/blob/{ref}/{path}"


def _trim(lines):
    """Drop blank lines at both ends of a list of lines."""
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _markdown_text(lines, name, first_line):
    """Strip the ``# `` prefix of markdown lines; reject anything else."""
    text = []
    for offset, line in enumerate(lines):
        if line == "#" or not line.strip():
            text.append("")
        elif line.startswith("# "):
            text.append(line[2:])
        else:
            raise ValueError(
                f"{name}:{first_line + offset}: markdown line {line!r} must start "
                "with '# ' or be a bare '#'"
            )
    return _trim(text)


def _check_code(lines, name, first_line):
    """Reject IPython magics and shell escapes, which plain Python cannot run."""
    for offset, line in enumerate(lines):
        if line.startswith(("%", "!")):
            raise ValueError(
                f"{name}:{first_line + offset}: {line!r} is IPython syntax; sources "
                "must run as plain Python (use subprocess or a helper instead)"
            )


def _finish_cell(kind, lines, name, line_number):
    """Turn the lines after a marker into a Cell, or None when empty."""
    first = line_number + 1
    if kind == "setup":
        if _trim(lines):
            raise ValueError(
                f"{name}:{line_number}: '# %% [setup]' only marks where the set-up "
                "goes and must hold no lines; start a new cell with '# %%'"
            )
        return Cell("setup", "", f"{name}:{line_number}")
    if kind == "markdown":
        text = _markdown_text(lines, name, first)
    else:
        _check_code(lines, name, first)
        text = _trim(lines)
    if not text:
        return None
    return Cell(kind, "\n".join(text), f"{name}:{line_number}")


def hidden_solutions(cells, name):
    """The code blocks defining ``name`` in collapsed (``<details>``) markdown
    cells: the hidden solutions of a "your turn" cell, for the tests."""
    return [block for cell in cells
            if cell.kind == "markdown" and "<details>" in cell.source
            for block in re.findall(r"```python\n(.*?)```", cell.source, re.DOTALL)
            if re.search(rf"^def {name}\(", block, re.MULTILINE)]


def parse_source(text, name="<source>"):
    """Split a percent-format source into cells.

    Args:
        text: the source file's text.
        name: its name, used in error messages.

    Returns:
        The list of :class:`Cell` in file order; empty cells are dropped.

    Raises:
        ValueError: text before the first marker, an unknown marker, a
            markdown line without ``# ``, a magic, or a non-empty set-up cell;
            the message names the file and line.
    """
    cells = []
    kind, start, lines = None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        if MARKER.match(line):
            valid = VALID_MARKER.fullmatch(line)
            if valid is None:
                raise ValueError(
                    f"{name}:{number}: unknown cell marker {line!r}; use '# %%', "
                    "'# %% [markdown]' or '# %% [setup]'"
                )
            if kind is not None:
                cells.append(_finish_cell(kind, lines, name, start))
            kind, start, lines = valid.group("kind") or "code", number, []
        elif kind is None:
            if line.strip():
                raise ValueError(
                    f"{name}:{number}: text before the first '# %%' marker")
        else:
            lines.append(line)
    if kind is not None:
        cells.append(_finish_cell(kind, lines, name, start))
    return [cell for cell in cells if cell is not None]


def _json_cell(kind, source, cell_id):
    """Return an nbformat 4.5 cell without outputs."""
    cell = {"cell_type": kind, "id": cell_id, "metadata": {},
            "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


PICTURE_LINK = re.compile(r"\]\((?:\.\./)?pictures/(?P<name>[\w.-]+\.png)\)")


def _embed_pictures(source, root):
    """Turn links to ``pictures/*.png`` into cell attachments.

    Colab cannot show images from relative paths; attached images travel
    inside the notebook and show everywhere, offline too.

    Returns:
        ``(source, attachments)``, attachments ``None`` when there are none.
    """
    attachments = {}

    def attach(match):
        name = match.group("name")
        picture = pathlib.Path(root) / "pictures" / name
        if not picture.is_file():
            raise ValueError(f"picture {picture} linked from a notebook is missing")
        data = base64.b64encode(picture.read_bytes()).decode("ascii")
        attachments[name] = {"image/png": data}
        return f"](attachment:{name})"

    source = PICTURE_LINK.sub(attach, source)
    return source, attachments or None


def _source_cell_id(position, cell):
    """Return a stable id from the cell's position among sources and content."""
    digest = hashlib.sha256(f"{position}\n{cell.kind}\n{cell.source}".encode())
    return digest.hexdigest()[:12]


def _colab_setup_source():
    """Return the code of the one Colab set-up cell, stamped with the release."""
    return f'''\
# Set-up: fetch the workshop files of this notebook's release and install what
# is missing (about 30 s on a fresh Colab runtime, under 1 s when run again).
# To try a branch or a fork, first run a cell with %env WORKSHOP_REF=main (and
# %env WORKSHOP_REPO_URL=https://github.com/<you>/<fork>).
import os
import pathlib
import runpy
import urllib.error
import urllib.request

RELEASE = "{RELEASE}"  # stamped by tools/build_notebooks.py
REF = os.environ["WORKSHOP_REF"] = os.environ.get("WORKSHOP_REF") or RELEASE
REPO = (os.environ.get("WORKSHOP_REPO_URL")
        or "{setup_colab.REPO_URL}")
RAW = REPO.replace("https://github.com/", "https://raw.githubusercontent.com/")
SETUP_URL = f"{{RAW.removesuffix('.git')}}/{{REF}}/setup_colab.py"
setup_script = pathlib.Path("setup_colab.py")
if not setup_script.is_file() and pathlib.Path("../setup_colab.py").is_file():
    setup_script = pathlib.Path("../setup_colab.py")  # a notebook in a sub-folder
elif (setup_script.is_file() and not pathlib.Path(".git").exists()
      and f'WORKSHOP_REF = "{{RELEASE}}"' not in setup_script.read_text()):
    setup_script.unlink()  # left by another release: fetch this release's
if not setup_script.is_file():
    try:
        with urllib.request.urlopen(SETUP_URL, timeout=30) as response:
            setup_script.write_bytes(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(
            f"Could not download {{SETUP_URL}}: {{error}}. "
            + (f"Release {{REF}} is not on GitHub (the connection works). "
               f"Maintainers publish it with: git push --atomic origin main {{REF}}. "
               "To use a branch meanwhile, run %env WORKSHOP_REF=main, then this "
               "cell again." if error.code == 404 else "Run this cell again.")
        ) from None
    except OSError as error:
        raise SystemExit(
            f"Could not download {{SETUP_URL}}: {{error}}. "
            "Check the internet connection and run this cell again."
        ) from None
# Run it in this process, so that `import helpers` works in the next cells.
setup_namespace = runpy.run_path(str(setup_script), run_name="__main__")
import helpers

HELPERS_RELEASE = "v" + getattr(helpers, "__version__", "(none)")
if REF == RELEASE and HELPERS_RELEASE != RELEASE:
    raise SystemExit(
        f"This notebook is release {{RELEASE}}, but the helpers in "
        f"{{helpers.__path__[0]}} are {{HELPERS_RELEASE}}. Fix: Runtime > "
        "Disconnect and delete runtime, then run this cell again. If that "
        f"persists, tag {{RELEASE}} of {{REPO}} is wrong: please report it."
    )
'''


JUPYTER_NOTES = """\
## Set-up (local Jupyter)

This notebook runs on your own machine, from a clone of the repository.
Once, in the repository folder (Python 3.10 or newer):

```bash
python -m venv .venv && . .venv/bin/activate   # Windows: .venv\\Scripts\\activate
pip install -r requirements.txt jupyterlab
jupyter lab Jupyter_Practicals.ipynb
```

Without a GPU, install the much smaller CPU build of torch before the
requirements: `pip install torch --index-url https://download.pytorch.org/whl/cpu`.
`python setup_colab.py` checks an existing environment and installs what is
missing (it never touches torch, numpy, pandas or matplotlib).

The next cell checks that everything imports and shows which device torch
will use. Everything in this notebook also runs on a CPU.
"""

JUPYTER_CHECK = """\
import pathlib
import platform

try:
    import google.colab  # noqa: F401  (importable only in Colab)
except ImportError:
    pass
else:
    raise SystemExit(
        "This notebook is for a local Jupyter. In Colab, open the Colab "
        "notebook instead: COLAB_PRACTICALS_URL"
    )

import torch
import torchdiffeq

import helpers

print(f"Python {platform.python_version()} | torch {torch.__version__} | "
      f"torchdiffeq {torchdiffeq.__version__} | "
      f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}")
print(f"helpers from {pathlib.Path(helpers.__file__).parent}")
"""


def _jupyter_check_source():
    """Return the Jupyter check cell, pointing Colab users to the Colab notebook."""
    url = colab_badge_url("Colab_Practicals.ipynb")
    return JUPYTER_CHECK.replace("COLAB_PRACTICALS_URL", url).rstrip("\n")


def _setup_cells(style):
    """Return the JSON cells that replace the ``# %% [setup]`` marker."""
    if style == "colab":
        return [_json_cell("code", _colab_setup_source(), COLAB_SETUP_ID)]
    return [_json_cell("markdown", JUPYTER_NOTES.rstrip("\n"), JUPYTER_NOTES_ID),
            _json_cell("code", _jupyter_check_source(), JUPYTER_CHECK_ID)]


def build_notebook(cells, style, path, root=REPO_ROOT):
    """Assemble a notebook from parsed source cells.

    Args:
        cells: source cells, exactly one of kind ``"setup"``.
        style: ``"colab"`` or ``"jupyter"``.
        path: notebook path relative to the repository root (for the badge).
        root: repository root, where linked ``pictures/*.png`` are read.

    Returns:
        The notebook as a dict in nbformat 4.5, without outputs.

    Raises:
        ValueError: the set-up marker is missing or appears more than once.
    """
    if style not in ("colab", "jupyter"):
        raise ValueError(f"style={style!r}; allowed: 'colab', 'jupyter'")
    markers = [cell.origin for cell in cells if cell.kind == "setup"]
    if len(markers) != 1:
        raise ValueError(
            f"{path}: its sources need exactly one '# %% [setup]' marker, found "
            f"{len(markers)}" + (f" at {', '.join(markers)}" if markers else "")
        )
    json_cells = []
    if style == "colab":
        badge = (
            "[![Open In Colab](https://colab.research.google.com/assets/"
            f"colab-badge.svg)]({colab_badge_url(path)})"
        )
        json_cells.append(_json_cell("markdown", badge, BADGE_ID))
    for position, cell in enumerate(cells):
        if cell.kind == "setup":
            json_cells.extend(_setup_cells(style))
        elif cell.kind == "markdown":
            source, attachments = _embed_pictures(cell.source, root)
            json_cell = _json_cell("markdown", source, _source_cell_id(position, cell))
            if attachments:
                json_cell["attachments"] = attachments
            json_cells.append(json_cell)
        else:
            json_cells.append(
                _json_cell(cell.kind, cell.source, _source_cell_id(position, cell)))
    return {"cells": json_cells, "metadata": NOTEBOOK_METADATA,
            "nbformat": 4, "nbformat_minor": 5}


def render(notebook):
    """Serialise a notebook deterministically (sorted keys, one-space indent)."""
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def build(root=REPO_ROOT):
    """Build every notebook whose sources exist.

    Args:
        root: repository root holding ``notebooks/``.

    Returns:
        A dict mapping notebook paths (relative to ``root``) to their text.

    Raises:
        ValueError: a required source is missing or a source is malformed.
    """
    root = pathlib.Path(root)
    built = {}
    for target in TARGETS:
        paths = sorted(root.glob(target.sources))
        if not paths:
            if target.required:
                raise ValueError(f"{target.path}: no sources match {target.sources}")
            continue
        cells = []
        for path in paths:
            name = path.relative_to(root).as_posix()
            cells.extend(parse_source(path.read_text(encoding="utf-8"), name))
        notebook = build_notebook(cells, target.style, target.path, root)
        built[target.path] = render(notebook)
    return built


def stale_notebooks(root=REPO_ROOT):
    """Return ``(path, reason)`` for each notebook that differs from its build."""
    root = pathlib.Path(root)
    stale = []
    for path, text in build(root).items():
        file = root / path
        if not file.is_file():
            stale.append((path, "missing"))
        elif file.read_text(encoding="utf-8") != text:
            stale.append((path, "differs from its sources"))
    return stale


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a notebook is stale")
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT,
                        help="repository root (default: this script's repository)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_notebooks(args.root)
            for path, reason in stale:
                print(f"stale: {path} ({reason})", file=sys.stderr)
            if stale:
                print("rebuild with: python tools/build_notebooks.py", file=sys.stderr)
                return 1
            print("notebooks are up to date")
            return 0
        for path, text in build(args.root).items():
            file = args.root / path
            if file.is_file() and file.read_text(encoding="utf-8") == text:
                continue
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {path}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
