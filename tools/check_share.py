"""Share of argument-check lines in the code of ``helpers/``, whole package.

Run from the repository root:

    python tools/check_share.py                # the working tree
    python tools/check_share.py --rev 849d48b  # a commit (any layout)

Code lines are the lines that hold Python statements, found with ``ast``:
docstrings, comments and blank lines do not count. A code line is a check
line when it belongs to
- a function whose name starts with ``check_`` or ``_check``,
- a ``raise`` of ``ValueError``, or the ``if`` (or ``elif``) line that guards
  a body made only of such raises,
- a statement that calls a ``check_*`` or ``_check*`` function,
- an ``except`` clause whose body re-raises a ``ValueError``.
Prints one markdown row per module (path inside ``helpers/``, subpackages
included) and the total, then the longest functions by code lines.
"""

import argparse
import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _is_check_name(name: str) -> bool:
    return name.startswith(("check_", "_check"))


def _raises_value_error(node: ast.AST) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == "ValueError"


def _calls_check(node: ast.stmt) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            func = child.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if _is_check_name(name):
                return True
    return False


def _is_guard(node: ast.AST) -> bool:
    """An ``except`` re-raising a ValueError, or a statement calling a check."""
    if isinstance(node, ast.ExceptHandler):
        return any(_raises_value_error(s) for s in node.body)
    statement = isinstance(node, (ast.Expr, ast.Assign, ast.Return))
    return statement and _calls_check(node)


def _lines(node: ast.AST) -> set:
    return set(range(node.lineno, node.end_lineno + 1))


def _docstring_lines(tree: ast.Module) -> set:
    lines = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines |= _lines(body[0])
    return lines


def _code_lines(source: str, tree: ast.Module) -> set:
    """Lines that hold statements or their continuation: no blank lines,
    comments or docstrings."""
    code = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):
            code |= _lines(node)
    # a compound statement spans its body; keep only lines with statements
    # or their continuation, and drop docstrings
    text = source.splitlines()
    code = {
        n for n in code
        if text[n - 1].strip() and not text[n - 1].strip().startswith("#")
    }  # fmt: skip
    return code - _docstring_lines(tree)


def function_lengths(source: str) -> dict:
    """Code lines of every function (its own, nested functions included)."""
    tree = ast.parse(source)
    code = _code_lines(source, tree)
    return {
        f"{node.name}:{node.lineno}": len(code & _lines(node)) - 1  # not the def
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def count(source: str, whole_file_is_checks: bool = False) -> tuple:
    """``(code lines, check lines)`` of one module's source."""
    tree = ast.parse(source)
    code = _code_lines(source, tree)
    if whole_file_is_checks:
        return len(code), len(code)
    checks = set()
    for node in ast.walk(tree):
        is_checker = isinstance(node, ast.FunctionDef) and _is_check_name(node.name)
        if is_checker or _raises_value_error(node):
            checks |= _lines(node)
        elif isinstance(node, ast.If) and all(map(_raises_value_error, node.body)):
            checks |= _lines(node.test) | {node.lineno}
        elif _is_guard(node):
            checks |= _lines(node)
    return len(code), len(checks & code)


def sources(rev: str | None) -> dict:
    """Path inside ``helpers/`` -> source of every ``.py`` file at ``rev``."""
    if rev is None:
        return {str(p.relative_to(ROOT / "helpers")): p.read_text()
                for p in sorted(ROOT.glob("helpers/**/*.py"))}
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "helpers/"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    texts = {}
    for path in listing:
        if path.endswith(".py"):
            command = ["git", "show", f"{rev}:{path}"]
            texts[path.removeprefix("helpers/")] = subprocess.run(
                command, cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a git revision (default: the files on disk)")
    parser.add_argument("--longest", type=int, default=8,
                        help="how many of the longest functions to list")
    args = parser.parse_args()
    rows = {
        name: count(text, whole_file_is_checks=name == "_checks.py")
        for name, text in sources(args.rev).items()
    }
    print("| module | code lines | check lines | share |")
    print("| --- | ---: | ---: | ---: |")
    for name, (code, checks) in rows.items():
        print(f"| {name} | {code} | {checks} | {checks / max(code, 1):.0%} |")
    code = sum(c for c, _ in rows.values())
    checks = sum(k for _, k in rows.values())
    print(f"| **total** | {code} | {checks} | {checks / code:.0%} |")
    lengths = sorted(
        ((length, f"{name}:{function}") for name, text in sources(args.rev).items()
         for function, length in function_lengths(text).items()),
        reverse=True,
    )
    print("\nlongest functions (code lines, signature lines included):")
    for length, where in lengths[: args.longest]:
        print(f"  {length:4d}  {where}")


if __name__ == "__main__":
    main()
