"""Tests of the notebook builder (tools/build_notebooks.py) and its outputs."""

import ast
import base64
import json
import pathlib
import re

import nbformat
import pytest

import build_notebooks
import setup_colab

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").rglob("*.py"))
COMMITTED = sorted(  # every notebook of the bundle, not those of environments
    path for path in ROOT.rglob("*.ipynb")
    if not any(part.startswith(".") or part in ("venv", "site-packages")
               for part in path.relative_to(ROOT).parts)
)


def load(path):
    """Return a notebook file as a dict."""
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def write(path, text):
    """Write ``text`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def texts(notebook):
    """Return ``(cell_type, source text)`` for every cell."""
    return [(cell["cell_type"], "".join(cell["source"])) for cell in notebook["cells"]]


# --- the committed notebooks -------------------------------------------------


def test_committed_notebooks_equal_the_build():
    assert build_notebooks.stale_notebooks(ROOT) == []
    assert build_notebooks.main(["--check"]) == 0


def test_every_target_with_sources_is_committed():
    built = build_notebooks.build(ROOT)
    assert {"Colab_Practicals.ipynb", "Jupyter_Practicals.ipynb"} <= set(built)
    for path in built:
        assert (ROOT / path).is_file(), path


def test_practicals_differ_only_in_the_setup_section():
    colab = load("Colab_Practicals.ipynb")["cells"]
    jupyter = load("Jupyter_Practicals.ipynb")["cells"]
    assert colab[0]["id"] == build_notebooks.BADGE_ID

    def split(cells):
        ids = [cell["id"] for cell in cells]
        setup_ids = set(build_notebooks.SETUP_IDS) - {build_notebooks.BADGE_ID}
        setup = [i for i, cell_id in enumerate(ids) if cell_id in setup_ids]
        assert setup == list(range(setup[0], setup[-1] + 1)), "set-up cells adjoin"
        start = 1 if ids[0] == build_notebooks.BADGE_ID else 0
        return cells[start:setup[0]], cells[setup[-1] + 1:], [ids[i] for i in setup]

    colab_before, colab_after, colab_setup = split(colab)
    jupyter_before, jupyter_after, jupyter_setup = split(jupyter)
    assert colab_setup == [build_notebooks.COLAB_SETUP_ID]
    assert jupyter_setup == [build_notebooks.JUPYTER_NOTES_ID,
                             build_notebooks.JUPYTER_CHECK_ID]
    assert colab_before == jupyter_before
    assert colab_after == jupyter_after
    assert colab_after, "the lessons follow the set-up"


def relative(path):
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", COMMITTED, ids=relative)
def test_committed_notebooks_are_valid_and_carry_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    ids = [cell.id for cell in notebook.cells]
    assert len(ids) == len(set(ids))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{cell.id} has outputs"
            assert cell.execution_count is None, f"{cell.id} has an execution count"


@pytest.mark.parametrize("path", SOURCES, ids=relative)
def test_every_source_parses(path):
    cells = build_notebooks.parse_source(path.read_text(encoding="utf-8"), path.name)
    assert cells
    for cell in cells:
        if cell.kind == "code":
            compile(cell.source, str(path), "exec")  # valid plain Python


def test_colab_setup_cell_downloads_the_pinned_setup_script():
    cell = next(c for c in load("Colab_Practicals.ipynb")["cells"]
                if c["id"] == build_notebooks.COLAB_SETUP_ID)
    tree = ast.parse("".join(cell["source"]))
    stamped = [ast.literal_eval(node.value) for node in tree.body
               if isinstance(node, ast.Assign) and node.targets[0].id == "RELEASE"]
    assert stamped == [setup_colab.WORKSHOP_REF]
    # the address the cell builds from RELEASE when no WORKSHOP_* is set
    head = "".join(cell["source"]).split("setup_script = ", 1)[0]
    namespace = {}
    exec(head.replace("os.environ", "{}"), namespace)  # noqa: S102
    assert namespace["SETUP_URL"] == setup_colab.raw_file_url("setup_colab.py")


# --- the README --------------------------------------------------------------


def test_readme_badges_and_setup_script_name_the_same_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    slug = setup_colab.REPO_URL.removeprefix("https://github.com/")
    badges = re.findall(r"https://colab\.research\.google\.com/github/([^/]+/[^/]+)/",
                        readme)
    assert badges and set(badges) == {slug}
    for path in build_notebooks.build(ROOT):
        # the Jupyter notebook has local set-up notes: no Colab badge for it
        wanted = not str(path).startswith("Jupyter")
        assert (build_notebooks.colab_badge_url(path) in readme) is wanted, path


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ("pip install -r requirements.txt -r requirements-bonus.txt && "
            "python -m pytest") in readme
    assert re.search(r"^python -m pytest \|\|", ci, re.MULTILINE)
    assert ci.index("torch==2.13.0") < ci.index("-r requirements.txt")
    assert "-r requirements-bonus.txt" in ci


# --- the parser on hand-made sources -----------------------------------------

FIRST = """\
# %% [markdown]
# # Title
#
# Text with `code` and a list:
# - one
#   - nested

# %% [setup]

# %%
import math


def area(radius):
    # a comment stays in the code
    return math.pi * radius**2
"""

SECOND = """\


# %% [markdown]
# ## Part two
#
# $$\\frac{a}{b}$$

# %%
print(area(1.0))
# %%

"""


@pytest.fixture
def tiny_repo(tmp_path):
    """A repository root with two practicals sources (written out of order)."""
    write(tmp_path / "notebooks" / "practicals" / "02_second.py", SECOND)
    write(tmp_path / "notebooks" / "practicals" / "01_first.py", FIRST)
    return tmp_path


def test_parser_round_trips_markdown_and_code(tiny_repo):
    assert build_notebooks.main(["--root", str(tiny_repo)]) == 0
    colab = json.loads((tiny_repo / "Colab_Practicals.ipynb").read_text())
    jupyter = json.loads((tiny_repo / "Jupyter_Practicals.ipynb").read_text())
    expected_first = [
        ("markdown", "# Title\n\nText with `code` and a list:\n- one\n  - nested"),
    ]
    expected_rest = [
        ("code", ("import math\n\n\ndef area(radius):\n"
                  "    # a comment stays in the code\n    return math.pi * radius**2")),
        ("markdown", "## Part two\n\n$$\\frac{a}{b}$$"),
        ("code", "print(area(1.0))"),
    ]
    assert texts(colab)[1:2] == expected_first
    assert texts(colab)[3:] == expected_rest
    assert texts(jupyter)[:1] == expected_first
    assert texts(jupyter)[3:] == expected_rest
    assert not (tiny_repo / "bonus").exists()  # no bonus source, no bonus notebook
    namespace = {}
    for kind, text in texts(jupyter)[3:]:
        if kind == "code":
            exec(text, namespace)  # noqa: S102 - the cells run in order as Python
    assert namespace["area"](2.0) == pytest.approx(4 * 3.141592653589793)


def test_build_is_deterministic_and_ids_follow_content(tiny_repo):
    first = build_notebooks.build(tiny_repo)
    assert build_notebooks.build(tiny_repo) == first
    source = tiny_repo / "notebooks" / "practicals" / "02_second.py"
    source.write_text(SECOND.replace("print(area(1.0))", "print(area(2.0))"))
    second = build_notebooks.build(tiny_repo)
    old = [c["id"] for c in json.loads(first["Colab_Practicals.ipynb"])["cells"]]
    new = [c["id"] for c in json.loads(second["Colab_Practicals.ipynb"])["cells"]]
    assert [a == b for a, b in zip(old, new)] == [True] * 5 + [False]


def test_bonus_notebook_is_built_colab_style_in_its_folder(tiny_repo):
    write(tiny_repo / "notebooks" / "icu_missing_reports.py",
          "# %% [markdown]\n# # Bonus\n\n# %% [setup]\n\n# %%\nx = 1\n")
    built = build_notebooks.build(tiny_repo)
    bonus = json.loads(built["bonus/ICU_missing_reports.ipynb"])
    assert [c["id"] for c in bonus["cells"]][:3] == [
        build_notebooks.BADGE_ID, bonus["cells"][1]["id"],
        build_notebooks.COLAB_SETUP_ID]
    release = setup_colab.WORKSHOP_REF
    assert f"blob/{release}/bonus/ICU_missing_reports.ipynb" in "".join(
        bonus["cells"][0]["source"])


def test_check_names_stale_and_missing_notebooks(tiny_repo, capsys):
    assert build_notebooks.main(["--root", str(tiny_repo), "--check"]) == 1
    err = capsys.readouterr().err
    assert "Colab_Practicals.ipynb (missing)" in err
    assert build_notebooks.main(["--root", str(tiny_repo)]) == 0
    assert build_notebooks.main(["--root", str(tiny_repo), "--check"]) == 0
    notebook = tiny_repo / "Jupyter_Practicals.ipynb"
    notebook.write_text(notebook.read_text().replace("Part two", "Part 2"))
    capsys.readouterr()
    assert build_notebooks.main(["--root", str(tiny_repo), "--check"]) == 1
    err = capsys.readouterr().err
    assert "Jupyter_Practicals.ipynb (differs from its sources)" in err
    assert "Colab_Practicals.ipynb" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import os\n# %%\nx = 1\n", "src.py:1: text before the first"),
        ("# %% [raw]\nx\n", "src.py:1: unknown cell marker"),
        ("#%%\nx = 1\n", "src.py:1: unknown cell marker"),
        ("# %% [markdown]\n# fine\nnot a comment\n", "src.py:3: markdown line"),
        ("# %% [markdown]\n#no space\n", "src.py:2: markdown line"),
        ("# %%\nx = 1\n%timeit x\n", "src.py:3: '%timeit x' is IPython syntax"),
        ("# %%\n!pip install torch\n", "src.py:2: '!pip install torch' is IPython"),
        ("# %% [setup]\nimport torch\n", "src.py:1: '# %% [setup]' only marks"),
    ],
)
def test_parser_rejects_malformed_sources(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_notebooks.parse_source(text, "src.py")


@pytest.mark.parametrize(("markers", "found"), [(0, "found 0"), (2, "found 2 at")])
def test_each_notebook_needs_exactly_one_setup_marker(tmp_path, markers, found):
    for number in range(max(markers, 1)):
        setup = "# %% [setup]\n" if number < markers else ""
        write(tmp_path / "notebooks" / "practicals" / f"0{number}.py",
              f"{setup}# %%\nx = {number}\n")
    with pytest.raises(ValueError, match=found):
        build_notebooks.build(tmp_path)
    assert build_notebooks.main(["--root", str(tmp_path)]) == 2


def test_missing_practicals_sources_are_an_error(tmp_path):
    with pytest.raises(ValueError, match="no sources match notebooks/practicals"):
        build_notebooks.build(tmp_path)


def test_unknown_style_is_rejected():
    with pytest.raises(ValueError, match="style='kaggle'"):
        build_notebooks.build_notebook([], "kaggle", "x.ipynb")


def test_pictures_are_attached_so_colab_shows_them():
    notebook = json.loads((build_notebooks.REPO_ROOT / "Colab_Practicals.ipynb")
                          .read_text(encoding="utf-8"))
    attached = {}
    for cell in notebook["cells"]:
        text = "".join(cell["source"])
        assert "](pictures/" not in text
        for name, data in cell.get("attachments", {}).items():
            assert f"](attachment:{name})" in text
            attached[name] = base64.b64decode(data["image/png"])
    assert "odevae.png" in attached
    for name, data in attached.items():
        assert data == (build_notebooks.REPO_ROOT / "pictures" / name).read_bytes()
