"""An offline stand-in for GitHub and Colab, for tests/test_colab_emulation.py.

GitHub is a bare repository made from this working tree (tracked files and
untracked ones that git does not ignore), tagged like a release. Two things
point there instead of github.com, and neither changes a notebook's text:

* git, through a private global config with ``url.<bare>.insteadOf``;
* ``urllib``, through ``sitecustomize.py`` in a folder on ``PYTHONPATH``,
  which installs an opener that answers raw.githubusercontent.com addresses
  ``/<owner>/<name>/<ref>/<path>`` with ``git show <ref>:<path>`` (404 when
  there is no such file at that ref) and refuses every other address as a
  machine without network would.

Colab is a fresh working directory, a fake ``google.colab`` package and a
fake pip that only records what it was asked (torchdiffeq counts as missing,
as in Colab). A notebook's set-up cell runs as it is in the notebook, in a
new Python process, like a fresh kernel.
"""

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULT_MARK = "EMULATION-RESULT "

SITECUSTOMIZE = '''\
import email.message
import io
import json
import os
import subprocess
import urllib.error
import urllib.request
import urllib.response

REPOSITORIES = json.loads(os.environ.get("EMULATED_GITHUB", "{}"))
RAW = "https://raw.githubusercontent.com/"


class EmulatedGitHub(urllib.request.BaseHandler):
    """Answer raw-file downloads from local bare repositories; no network."""

    handler_order = 100  # before the real HTTP and HTTPS handlers

    def _answer(self, request):
        url = request.full_url
        if not url.startswith(RAW):
            raise urllib.error.URLError("offline emulation: no network for " + url)
        owner, name, ref, path = url[len(RAW):].split("/", 3)
        bare = REPOSITORIES.get(f"{owner}/{name}")
        shown = subprocess.run(
            ["git", "--git-dir", bare or "/nonexistent", "show", f"{ref}:{path}"],
            capture_output=True, check=False)
        if bare is None or shown.returncode != 0:
            raise urllib.error.HTTPError(url, 404, "Not Found",
                                         email.message.Message(), None)
        response = urllib.response.addinfourl(io.BytesIO(shown.stdout),
                                              email.message.Message(), url, 200)
        response.msg = "OK"
        return response

    def http_open(self, request):
        return self._answer(request)

    def https_open(self, request):
        return self._answer(request)


urllib.request.install_opener(urllib.request.build_opener(EmulatedGitHub))
'''

FAKE_PIP = """\
import json
import os
import sys

with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""

# Runs one set-up cell twice (as a learner re-running it), then resolves what
# the notebook imports and which attributes of helpers it uses.
PROBE = '''\
import importlib
import importlib.util
import json
import os
import sys
import time
import types

cell = open(sys.argv[1], encoding="utf-8").read()
uses = json.load(open(sys.argv[2], encoding="utf-8"))
namespace = {"__name__": "__main__"}
seconds = []
for _ in range(2):
    start = time.perf_counter()
    exec(compile(cell, "<set-up cell>", "exec"), namespace)
    seconds.append(time.perf_counter() - start)
    os.environ.pop("WORKSHOP_PRETEND_MISSING", None)  # as if pip had installed


def resolve(dotted):
    """Import helpers modules; only find the others (Colab ships them)."""
    if dotted.split(".")[0] == "helpers":
        return importlib.import_module(dotted)
    if importlib.util.find_spec(dotted) is None:
        raise ImportError(f"no module named {dotted!r}")
    return None


unresolved = []
for module in uses["modules"]:
    try:
        resolve(module)
    except ImportError as error:
        unresolved.append(f"import {module}: {error}")
for module, name in uses["names"]:
    try:
        found = resolve(module)
        if found is not None and not hasattr(found, name):
            importlib.import_module(f"{module}.{name}")
    except ImportError as error:
        unresolved.append(f"from {module} import {name}: {error}")
for chain in uses["attributes"]:
    try:
        value = importlib.import_module(chain[0])
        for name in chain[1:]:
            if not isinstance(value, types.ModuleType):
                break  # past the modules: attributes of objects are not ours
            value = getattr(value, name)  # a submodule only if imported above
    except (ImportError, AttributeError) as error:
        unresolved.append(f"{'.'.join(chain)}: {error}")
helpers = sys.modules["helpers"]
print("EMULATION-RESULT " + json.dumps({
    "seconds": seconds, "version": getattr(helpers, "__version__", None),
    "helpers": str(helpers.__path__[0]), "unresolved": unresolved}))
'''


def git(*args, cwd=None):
    """Run git with a neutral identity and no user config; return stdout."""
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
               "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
               "-c", "init.defaultBranch=main", *args]
    return subprocess.run(command, cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def copy_working_tree(destination):
    """Copy the files git would commit from the working tree to ``destination``."""
    listed = subprocess.run(  # with the user's git config (safe.directory)
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the tree is left out
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def make_github(base, tag, edit=None):
    """Make a bare repository of this working tree, its ``main`` tagged ``tag``.

    Args:
        base: an empty folder to work in.
        tag: the tag to create (None: no tag, as before a release is pushed).
        edit: a function called with the source folder before the commit, to
            make a repository of another release.

    Returns:
        The path of the bare repository.
    """
    source = base / "source"
    source.mkdir(parents=True)
    copy_working_tree(source)
    if edit is not None:
        edit(source)
    git("init", "--quiet", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "--quiet", "-m", "release", cwd=source)
    if tag is not None:
        git("tag", "-a", tag, "-m", f"release {tag}", cwd=source)
    bare = base / "github.git"
    git("clone", "--quiet", "--bare", str(source), str(bare))
    shutil.rmtree(source)
    return bare


def make_fakes(base):
    """Write the fake google.colab, sitecustomize and pip; return the folder."""
    package = base / "google" / "colab"  # google: a namespace package
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "output.py").write_text("def enable_custom_widget_manager():\n"
                                       "    pass\n")
    (base / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (base / "fake_pip.py").write_text(FAKE_PIP)
    (base / "probe.py").write_text(PROBE)
    return base


def helpers_uses(code_cells):
    """Return what code cells import, and which ``helpers`` attributes they use.

    Args:
        code_cells: texts of the notebook's code cells (set-up cell excluded).

    Returns:
        A dict: ``modules`` (dotted names of ``import`` lines), ``names``
        (``[module, name]`` of ``from`` lines) and ``attributes`` (chains such
        as ``["helpers", "icu_data", "load_reports"]``, aliases resolved).
    """
    modules, names, attributes = set(), set(), set()
    aliases = {}  # local name -> dotted helpers path
    trees = [ast.parse(text) for text in code_cells]
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    modules.add(alias.name)
                    if alias.name.split(".")[0] == "helpers":
                        local = alias.asname or alias.name.split(".")[0]
                        aliases[local] = alias.name if alias.asname else "helpers"
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                for alias in node.names:
                    names.add((node.module, alias.name))
                    if node.module.split(".")[0] == "helpers":
                        aliases[alias.asname or alias.name] = (
                            f"{node.module}.{alias.name}")
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            chain = []
            value = node
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                attributes.add(tuple(aliases[value.id].split(".")) + tuple(chain))
    return {"modules": sorted(modules), "names": sorted(names),
            "attributes": sorted(attributes)}


class Colab:
    """Fresh Colab runtimes that open notebooks from an emulated GitHub."""

    def __init__(self, fakes, bare, logs):
        self.fakes, self.bare, self.logs = fakes, bare, logs
        slug = self.slug()
        config = logs / "gitconfig"
        config.write_text(
            f'[url "file://{bare}"]\n\tinsteadOf = https://github.com/{slug}\n'
            "[advice]\n\tdetachedHead = false\n")

    @staticmethod
    def slug():
        import setup_colab

        return setup_colab.REPO_URL.removeprefix("https://github.com/")

    def env(self, **extra):
        """Environment of a fresh Colab kernel, with nothing of this machine's."""
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("WORKSHOP_", "PYTHONPATH", "GIT_"))}
        env.update(
            PYTHONPATH=str(self.fakes),
            EMULATED_GITHUB=json.dumps({self.slug(): str(self.bare)}),
            GIT_CONFIG_GLOBAL=str(self.logs / "gitconfig"), GIT_CONFIG_NOSYSTEM="1",
            WORKSHOP_PIP=f"{sys.executable} {self.fakes / 'fake_pip.py'}",
            WORKSHOP_PRETEND_MISSING="torchdiffeq",
            FAKE_PIP_LOG=str(self.logs / "pip.log"), MPLBACKEND="Agg",
        )
        env.update(extra)
        return env

    def notebook(self, path, ref):
        """Return a notebook as GitHub serves it at ``ref``."""
        return json.loads(git("--git-dir", str(self.bare), "show", f"{ref}:{path}"))

    def run_cell(self, cell, cwd, uses=None, **extra):
        """Run ``cell`` (twice) and resolve ``uses`` in a fresh kernel in ``cwd``.

        Returns:
            ``(process, result)``: the finished process and the probe's
            result dict (None when the cell stopped).
        """
        cwd.mkdir(parents=True, exist_ok=True)
        (self.logs / "cell.py").write_text(cell, encoding="utf-8")
        (self.logs / "uses.json").write_text(json.dumps(
            uses or {"modules": [], "names": [], "attributes": []}))
        process = subprocess.run(
            [sys.executable, str(self.fakes / "probe.py"), str(self.logs / "cell.py"),
             str(self.logs / "uses.json")],
            cwd=cwd, env=self.env(**extra), capture_output=True, text=True,
            timeout=300, check=False)
        result = None
        for line in process.stdout.splitlines():
            if line.startswith(RESULT_MARK):
                result = json.loads(line[len(RESULT_MARK):])
        return process, result

    def pip_calls(self):
        """Return the argument lists fake pip was called with so far."""
        log = self.logs / "pip.log"
        if not log.is_file():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


def cell_text(notebook, cell_id):
    """Return the source of the cell with id ``cell_id``."""
    return next("".join(cell["source"]) for cell in notebook["cells"]
                if cell.get("id") == cell_id)


def code_cells(notebook, skip_id):
    """Return the code cells' texts, without the cell ``skip_id``."""
    return ["".join(cell["source"]) for cell in notebook["cells"]
            if cell["cell_type"] == "code" and cell.get("id") != skip_id]
