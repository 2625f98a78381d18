"""The notebooks as a person sees them: a real server, headless Chromium.

nbval proves that the kernels run; these tests prove that the widgets show.
Two front ends, each with its own widget version:

* ``lab``: JupyterLab 4 with ipywidgets 8, from the environment that runs
  pytest (the README's first command installs it);
* ``classic``: Notebook 6.5.7 with ipywidgets 7.7.1 (the widget versions
  Colab ships), from the Colab twin environment that ``.ci/run`` builds in
  ``build/venv-colab`` (another place: set ``COLAB_VENV``).

Marked ``browser``; ``python -m pytest -m "not browser"`` leaves them out.
Without Chromium, Playwright or a front end they are skipped with the
reason, except under ``CI=true``, where that is a failure. Screenshots go to
``build/screenshots/`` (the path is printed; see it with ``pytest -s``).
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
COLAB_VENV = Path(os.environ.get("COLAB_VENV", ROOT / "build" / "venv-colab"))
COLAB_VENV = COLAB_VENV.absolute()  # the servers run in another folder
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
WIDGET_ERRORS = ("Error displaying widget", "Could not create a model",
                 "Error rendering", "Failed to load model class")
FRONT_ENDS = ("lab", "classic")
EXPLORER_CELL = ("from helpers.widgets import explorer\n"
                 "panel = explorer(n=30, epochs=20)\n"
                 "panel")


def _missing(reason: str):
    """Skip locally, fail in CI: there a missing browser is a broken set-up."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("no chromium executable (Debian: apt-get install chromium)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_command(front_end: str, port: int, token: str, root: Path) -> list:
    common = ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0"]
    if os.geteuid() == 0:  # CI runs as root
        common.append("--allow-root")
    if front_end == "lab":
        try:
            import jupyterlab  # noqa: F401
        except ImportError:
            _missing("jupyterlab is not installed (README: pip install jupyterlab)")
        return [sys.executable, "-m", "jupyterlab", *common,
                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                "--expose-app-in-browser", "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    python = COLAB_VENV / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", ("import notebook, ipywidgets; "
                             "print(notebook.__version__, ipywidgets.__version__)")],
        capture_output=True, text=True, check=False) if python.exists() else None
    if probe is None or probe.returncode != 0:
        _missing(f"no classic Notebook with ipywidgets in {COLAB_VENV} "
                 "(.ci/run builds it; or set COLAB_VENV)")
    print(f"classic front end: notebook, ipywidgets {probe.stdout.strip()}")
    return [str(python), "-m", "notebook", *common, f"--NotebookApp.token={token}",
            f"--NotebookApp.notebook_dir={root}"]


def _descendants(pid: int) -> list:
    """Ids of every process below ``pid`` (kernels run in sessions of their own)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _stop(process: subprocess.Popen) -> None:
    """Stop the server, its kernels and anything else it started."""
    below = _descendants(process.pid)
    try:
        os.killpg(process.pid, signal.SIGTERM)  # the server shuts its kernels down
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    for pid in [process.pid, *below]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)


def _work_folder(folder: Path) -> Path:
    """The repository seen through links, so that runs never write into it."""
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name != "build":
            (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module", params=FRONT_ENDS)
def server(request, tmp_path_factory):
    """A Jupyter server on 127.0.0.1, a free port and a token; always stopped."""
    front_end = request.param
    tmp = tmp_path_factory.mktemp(f"{front_end}-server")
    root = _work_folder(tmp_path_factory.mktemp(f"{front_end}-root"))
    port, token = _free_port(), secrets.token_hex(16)
    command = _server_command(front_end, port, token, root)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_DATA_DIR=str(tmp / "data"), IPYTHONDIR=str(tmp / "ipython"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PYTHONPATH=str(ROOT))
    for name in ("MPLBACKEND", "TQDM_DISABLE"):  # conftest's; a person has neither
        env.pop(name, None)
    # JupyterLab asks on first open whether to fetch news: a person says no.
    # It also renders only the cells near the view; here it renders them all,
    # so that the checks of the page see every output and picture.
    settings = tmp / "config/lab/user-settings/@jupyterlab"
    for extension, file, value in (
            ("apputils-extension", "notification", '{"fetchNews": "false"}'),
            ("notebook-extension", "tracker", '{"windowingMode": "none"}')):
        (settings / extension).mkdir(parents=True)
        (settings / extension / f"{file}.jupyterlab-settings").write_text(value)
    log = tmp / "server.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}",
                                            timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{front_end} server did not start:\n{log.read_text()}")
            time.sleep(1)
        yield {"front_end": front_end, "base": base, "token": token, "root": root,
               "log": log}
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Debian Chromium driven by Playwright, with an empty profile."""
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; "
                 "no browser download needed)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1600})
        try:
            yield context
        finally:
            context.close()


def _front_end_noise(text: str, url: str) -> bool:
    """Console errors that the front ends make on their own, whatever we show.

    JupyterLab puts a markdown picture's ``attachment:`` address into the page
    before it swaps in the attached image, and the browser's fetch of that
    address fails (``images_loaded`` checks that the pictures show). The
    classic Notebook's MathJax 2 probes fonts that its package lacks (a 404
    for an .otf file, a font at about:blank) and falls back to others.
    """
    return (url.startswith("attachment:")
            or "/static/components/MathJax/fonts/" in url
            or url == "about:blank"
            or text.startswith("Access to font at 'about:blank'"))


class Page:
    """One notebook open in a front end, with the calls both need."""

    def __init__(self, context, server, notebook: str, wait_ready: bool = True):
        self.front_end = server["front_end"]
        self.page = context.new_page()
        self.console = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console.append(f"page: {error}"))
        self.kernel_messages = []  # (msg_type, comm method) the page received
        if self.front_end == "classic":  # JupyterLab's frames use another format
            self.page.on("websocket", self._websocket)
        base, token = server["base"], server["token"]
        if self.front_end == "lab":
            # reset: without it JupyterLab reopens the notebooks of the last
            # page, and the one asked for need not be the current tab
            self.page.goto(f"{base}/lab/tree/{notebook}?reset&token={token}")
            self.page.wait_for_function(
                "name => { const w = window.jupyterapp?.shell.currentWidget;"
                " return w?.sessionContext && w.context?.path === name; }",
                arg=notebook, timeout=120_000)
        else:
            self.page.goto(f"{base}/notebooks/{notebook}?token={token}")
            if not wait_ready:  # only until the kernel exists, as an impatient person
                self.page.wait_for_function(
                    "() => window.Jupyter && Jupyter.notebook"
                    " && Jupyter.notebook.kernel", timeout=120_000)
                return
            self.page.wait_for_function(
                "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
                " && Jupyter.notebook.kernel.is_connected()", timeout=120_000)
        self.wait_idle()
        if self.front_end == "classic":
            self.wait_widget_handshake()

    def _console(self, message):
        url = message.location.get("url", "")
        if message.type == "error" and not _front_end_noise(message.text, url):
            self.console.append(f"console: {message.text} ({url})")

    def _websocket(self, socket):
        if "/api/kernels/" in socket.url:
            socket.on("framereceived", self._kernel_frame)

    def _kernel_frame(self, payload):
        if isinstance(payload, bytes):  # a message with binary buffers: a count,
            count = int.from_bytes(payload[:4], "big")  # offsets, then the parts
            offsets = [int.from_bytes(payload[4 * i:4 * i + 4], "big")
                       for i in range(1, count + 1)] + [None]
            payload = payload[offsets[0]:offsets[1]].decode()
        message = json.loads(payload)
        data = message.get("content", {}).get("data")
        method = data.get("method") if isinstance(data, dict) else None
        self.kernel_messages.append((message["header"]["msg_type"], method))

    def wait_widget_handshake(self, timeout_s: float = 60):
        """Classic Notebook: wait until the widget manager has the kernel's answer.

        On connecting, ipywidgets 7's classic front end asks the kernel which
        widgets it holds (``request_states`` on the control comm, or, when the
        kernel has not imported ipywidgets yet, ``comm_info``). When the answer
        comes, it draws every widget output on the page again, and that re-draw
        removes them. A person reads before pressing Run All; a test that
        pressed it within those milliseconds lost the explorer at the end of the
        run (2 of 5 runs under load). So tests wait for the answer.
        """
        deadline = time.monotonic() + timeout_s
        while not any(kind == "comm_info_reply" or method == "update_states"
                      for kind, method in self.kernel_messages):
            assert time.monotonic() < deadline, (
                f"no widget handshake after {timeout_s} s: {self.kernel_messages}")
            self.page.wait_for_timeout(100)

    def dismiss_dialogs(self):
        """Accept JupyterLab's dialogs (kernel choice, news) as a person would."""
        dialogs = self.page.locator(".jp-Dialog .jp-mod-accept")
        while dialogs.count():
            dialogs.first.click()
            self.page.wait_for_timeout(300)

    def wait_idle(self, timeout_s: float = 120):
        """Wait until the kernel is started and idle."""
        if self.front_end == "lab":
            script = ("() => { const k = window.jupyterapp.shell.currentWidget"
                      ".sessionContext.session?.kernel; return k && k.status === "
                      "'idle'; }")
        else:
            script = ("() => document.querySelector('#kernel_indicator_icon')"
                      ".classList.contains('kernel_idle_icon')")
        deadline = time.monotonic() + timeout_s
        while True:
            if self.front_end == "lab":
                self.dismiss_dialogs()
            if self.page.evaluate(script):
                return
            assert time.monotonic() < deadline, "the kernel never became idle"
            self.page.wait_for_timeout(500)

    def run_all(self):
        if self.front_end == "lab":
            self.page.evaluate(
                "() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        else:
            self.page.evaluate("() => Jupyter.notebook.execute_all_cells()")

    def code_cells(self) -> list:
        """``[{count, outputs}]`` per code cell, from the front end's own model."""
        if self.front_end == "lab":
            script = """() => {
                const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
                const found = [];
                for (let i = 0; i < cells.length; i++) {
                    const cell = cells.get(i);
                    if (cell.type === 'code') {
                        found.push({count: cell.executionCount,
                                    outputs: cell.outputs.toJSON()});
                    }
                }
                return found;
            }"""
        else:
            script = """() => Jupyter.notebook.get_cells()
                .filter(cell => cell.cell_type === 'code')
                .map(cell => ({count: cell.input_prompt_number,
                               outputs: cell.output_area.outputs}))"""
        return self.page.evaluate(script)

    def wait_until_all_ran(self, timeout_s: float) -> list:
        """Wait until every code cell ran (or one failed); returns code_cells()."""
        deadline = time.monotonic() + timeout_s
        while True:
            cells = self.code_cells()
            outputs = [o for c in cells for o in c["outputs"]]
            failed = any(o["output_type"] == "error" for o in outputs)
            waiting = [i for i, c in enumerate(cells)
                       if not isinstance(c["count"], int)]
            done = not waiting
            if failed or done:
                self.wait_idle()
                return self.code_cells()
            assert time.monotonic() < deadline, (
                f"after {timeout_s} s, code cells {waiting} have not run")
            self.page.wait_for_timeout(1000)

    def explorer_output(self) -> str:
        """The text of the output of the cell that builds the explorer."""
        if self.front_end == "lab":
            script = """() => [...document.querySelectorAll('.jp-CodeCell')]
                .filter(c => c.innerText.includes('explorer('))
                .map(c => c.querySelector('.jp-OutputArea')?.innerText ?? '')[0]"""
        else:
            script = """() => Jupyter.notebook.get_cells()
                .filter(c => c.cell_type === 'code'
                             && c.get_text().includes('explorer('))
                .map(c => c.output_area.element[0].innerText)[0]"""
        return (self.page.evaluate(script) or "")[:300]

    def assert_no_widget_errors(self):
        text = self.page.inner_text("body")
        for words in WIDGET_ERRORS:
            assert words not in text, f"{words!r} on the page"
        assert not self.console, "\n".join(self.console)

    def images_loaded(self) -> tuple:
        """How many pictures the rendered markdown holds, and how many show."""
        return tuple(self.page.evaluate("""() => {
            const images = [...document.querySelectorAll(
                '.jp-RenderedMarkdown img, .text_cell_render img')];
            return [images.length,
                    images.filter(i => i.complete && i.naturalWidth > 0).length];
        }"""))

    def screenshot(self, name: str) -> Path:
        """Save the page, scrolled to the top of the explorer's panel if any."""
        run = self.page.locator("button.jupyter-button", has_text=re.compile("^Run$"))
        if run.count():
            panel = self.page.locator(".widget-vbox", has=run).first
            panel.evaluate("e => e.scrollIntoView({block: 'start'})")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.front_end}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path


def _write_notebook(path: Path, source: str) -> None:
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "explorer",
                   "metadata": {}, "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


def _slider(page, label: str):
    named = page.locator("label", has_text=re.compile(f"^{label}$"))
    return page.locator(".widget-hslider", has=named)


def test_explorer_renders_and_updates(browser, server):
    _write_notebook(server["root"] / "explorer.ipynb", EXPLORER_CELL)
    nb = Page(browser, server, "explorer.ipynb")
    page = nb.page
    nb.run_all()
    run = page.locator("button.jupyter-button", has_text=re.compile("^Run$"))
    # the panel, or the message of a front end that failed to render it
    failed = page.get_by_text(re.compile("|".join(WIDGET_ERRORS)))
    run.or_(failed).first.wait_for(timeout=120_000)
    nb.assert_no_widget_errors()
    status = page.locator(".widget-html", has_text=re.compile("Choose settings"))
    status.wait_for()
    figure = page.locator(".widget-image")
    assert not figure.is_visible()  # no figure before the first run

    # first run, clicked twice: the panel is busy and the second click is lost
    run.click()
    page.wait_for_selector(".widget-html progress")
    assert run.is_disabled()
    run.click(force=True)
    done = page.locator(".widget-html", has_text=re.compile(r"Done \(run \d\)"))
    done.wait_for(timeout=180_000)
    assert "Done (run 1)" in done.inner_text()
    assert "previous run" not in page.inner_text("body")
    figure.wait_for()
    first_png = figure.get_attribute("src")

    # a slider moved with the keyboard, then a second run next to the first
    seed = _slider(page, "model seed")
    seed.locator(".ui-slider-handle, .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "e => e.innerText.trim() === '1'",
        arg=seed.locator(".widget-readout").element_handle())
    run.click()
    page.locator(".widget-html", has_text="Done (run 2)").wait_for(timeout=180_000)
    body = page.inner_text("body")
    assert "previous run" in body and "Changed: model_seed 0 -> 1" in body
    assert figure.get_attribute("src") != first_png
    nb.wait_idle()
    assert "Done (run 2)" in page.inner_text("body")  # and no third run queued
    nb.assert_no_widget_errors()
    nb.screenshot("explorer")
    page.close()


def test_practicals_run_top_to_bottom(browser, server):
    shutil.copy(ROOT / "Jupyter_Practicals.ipynb", server["root"] / "Practicals.ipynb")
    nb = Page(browser, server, "Practicals.ipynb")
    nb.run_all()
    cells = nb.wait_until_all_ran(timeout_s=900)
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(cells)
              for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, errors
    source = json.loads((ROOT / "Jupyter_Practicals.ipynb").read_text())
    assert len(cells) == sum(c["cell_type"] == "code" for c in source["cells"])
    assert all(isinstance(c["count"], int) for c in cells)
    pictures, shown = nb.images_loaded()
    assert pictures > 0 and shown == pictures, f"{shown} of {pictures} pictures show"
    nb.assert_no_widget_errors()
    run = nb.page.locator("button.jupyter-button", has_text=re.compile("^Run$"))
    for _ in range(60):  # a slow front end gets a minute; the assert below says more
        if run.count():
            break
        nb.page.wait_for_timeout(1000)
    nb.screenshot("practicals")
    assert run.count() == 1, (
        f"no explorer panel; its cell shows: {nb.explorer_output()!r}")
    nb.page.close()


def test_classic_run_all_before_the_kernel_connects(browser, server):
    """The README's advice: after an early Run All, run the explorer's cell again.

    In the classic Notebook, a Run All pressed while the kernel is still
    connecting reaches the kernel before the widget handshake, which is
    answered only after the last cell; the re-draw that follows can remove the
    panel (see ``Page.wait_widget_handshake``). Running its cell again shows a
    panel that works.
    """
    if server["front_end"] != "classic":
        pytest.skip("the re-draw belongs to ipywidgets 7's classic front end")
    _write_notebook(server["root"] / "early.ipynb", EXPLORER_CELL)
    nb = Page(browser, server, "early.ipynb", wait_ready=False)
    page = nb.page
    connected = page.evaluate("() => Jupyter.notebook.kernel.is_connected()")
    nb.run_all()
    nb.wait_until_all_ran(timeout_s=300)
    nb.wait_widget_handshake()
    page.wait_for_timeout(2000)  # the re-draw, if any, follows the answer
    run = page.locator("button.jupyter-button", has_text=re.compile("^Run$"))
    print(f"kernel connected at Run All: {connected}; panel after the run: "
          f"{'shown' if run.count() else 'removed by the re-draw'}")
    page.evaluate("() => Jupyter.notebook.execute_cells([0])")
    run.wait_for(timeout=120_000)
    run.click()
    page.locator(".widget-html", has_text="Done (run 1)").wait_for(timeout=180_000)
    nb.assert_no_widget_errors()
    page.close()
