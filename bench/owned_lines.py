"""The lines of code a newcomer owns: `python -m bench.owned_lines`.

Code lines only: no blank line, comment or docstring (a module's, class's or function's
first string). The service's folders (app/, orm/, api/, alembic/, main.py) and its tests
(tests/), counted apart: the figures issue 24 set bounds on, before and after the README's
"Make it yours".
"""

import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ["app", "orm", "api", "alembic", "main.py"]
TESTS = ["tests"]


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        value = first.value if isinstance(first, ast.Expr) else None
        if first is not None and isinstance(value, ast.Constant) and isinstance(value.value, str):
            lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(source: str) -> int:
    """Lines holding a token other than a comment, outside docstrings."""
    docstrings = _docstring_lines(ast.parse(source))
    lines: set[int] = set()
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in skipped or token.type == tokenize.ENDMARKER:
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def count(parts: list[str], root: Path = ROOT) -> int:
    files: list[Path] = []
    for part in parts:
        path = root / part
        files.extend(
            sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        )
    return sum(code_lines(file.read_text()) for file in files)


def main() -> None:
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    service, tests = count(SERVICE, root), count(TESTS, root)
    print(f"service code lines (app/, orm/, api/, alembic/, main.py): {service}")
    print(f"test code lines (tests/): {tests}")


if __name__ == "__main__":
    main()
