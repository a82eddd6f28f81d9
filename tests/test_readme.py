"""The READMEs' Python snippets run, and print what the README says they print.

Conventions (for whoever writes a README snippet):

- Every ```python block of README.md and viz/README.md runs, in order, in one namespace per
  file (like notebook cells: a block may use what an earlier one defined), in a fresh temporary
  directory (files a snippet writes go there).
- `print(...)  # text`: text is what that print writes. The output may be followed in the
  comment by an explanation, after "(", ":", ";", "," or a space and a lowercase word
  ("# 24.0 (exactly twice)", "# True: the identity", "# 1.0 on this seed"); "..." stands for any
  text ("# L1: 4/4 σ units saturated; ..."); a string may be quoted ("# 'L2.n0.z'").
  Comments on other lines are prose and are not checked.
- A fence with no language (or `text`) right after a python block holds the block's whole
  output; "..." stands for any text, trailing spaces do not count. The print comments of such a
  block are then prose (the fence says what it prints).
- A block that ends with comment lines `# SomeError: message ...` must raise that error there,
  its message containing that text ("..." for any text).
- `<!-- readme-test: skip -->` on the line before a block marks a fragment that cannot run
  alone (it is then not run).
- `<!-- readme-test: output -->` on the line before a fence (of any language, for highlighting)
  makes it the whole output of the python block before it, as an output fence.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ("README.md", "viz/README.md")
SKIP = "<!-- readme-test: skip -->"
OUTPUT = "<!-- readme-test: output -->"


@dataclass
class Block:
    file: str
    line: int  # first line of code, 1-based
    code: str
    skip: bool = False
    output: str | None = None  # the output fence after it
    error: tuple[str, str] | None = None  # (error name, message) from trailing comments
    checks: list[tuple[int, str]] = field(default_factory=list)  # (code line, expected text)


def blocks(name: str) -> list[Block]:
    """The python blocks of a README, with what each says about its output."""
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        if i > 0 and lines[i - 1].strip() == OUTPUT and lines[i].startswith("```"):
            assert out and out[-1].output is None, f"{name} line {i + 1}: output of no block"
            m = i + 1
            while lines[m].strip() != "```":
                m += 1
            out[-1].output = "\n".join(lines[i + 1:m])
            i = m + 1
            continue
        if lines[i].strip() != "```python":
            i += 1
            continue
        start = i + 1
        j = start
        while lines[j].strip() != "```":
            j += 1
        code = lines[start:j]
        skip = i > 0 and lines[i - 1].strip() == SKIP
        b = Block(name, start + 1, "\n".join(code) + "\n", skip)
        k = j + 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        if k < len(lines) and lines[k].strip() in ("```", "```text"):
            m = k + 1
            while lines[m].strip() != "```":
                m += 1
            b.output = "\n".join(lines[k + 1:m])
        tail = []
        for ln in reversed(code):
            if ln.startswith("#"):
                tail.append(ln)
            elif ln.strip():
                break
        tail.reverse()
        if tail:
            m = re.match(r"#\s*([A-Z]\w*(?:Error|Exception)):\s*(.*)", tail[0])
            if m:
                b.error = (m.group(1), m.group(2))
        b.checks = _print_checks(b.code)
        out.append(b)
        i = j + 1
    return out


def _print_checks(code: str) -> list[tuple[int, str]]:
    """(line, expected) for each print(...) call statement followed by a comment."""
    tree = ast.parse(code)
    lines = code.splitlines()
    found = []
    for node in tree.body:
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "print"):
            last = lines[node.end_lineno - 1]
            rest = last[node.end_col_offset:]  # what follows the call on its last line
            m = re.match(r"\s*#\s?(.*)$", rest)
            if m:
                found.append((node.lineno, m.group(1).strip()))
    return found


def _pattern(expected: str) -> str:
    return ".*".join(re.escape(part) for part in expected.split("..."))


def says(expected: str, printed: str) -> bool:
    """Whether the comment `expected` states the printed output (see the module docstring)."""
    printed = printed.rstrip("\n")
    if "..." in expected:
        return re.match(_pattern(expected), printed, re.S) is not None
    for shown in (printed, repr(printed)):
        if expected == shown:
            return True
        if expected.startswith(shown):
            rest = expected[len(shown):]
            if re.match(r"(\s*[(:;,—]|\s+[a-z])", rest):
                return True
    return False


def same_output(expected: str, printed: str) -> bool:
    """Whether an output fence matches the block's whole output ("..." for any text)."""
    want = "\n".join(ln.rstrip() for ln in expected.strip("\n").splitlines())
    got = "\n".join(ln.rstrip() for ln in printed.strip("\n").splitlines())
    return re.fullmatch(_pattern(want), got, re.S) is not None


def run(block: Block, namespace: dict) -> None:
    """Run one block, checking its print comments, output fence and expected error."""
    tree = ast.parse(block.code)
    stdout = io.StringIO()
    per_line: dict[int, str] = {}
    for stmt in tree.body:
        mod = ast.Module(body=[stmt], type_ignores=[])
        code = compile(mod, f"{block.file}:{block.line + stmt.lineno - 1}", "exec")
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(code, namespace)  # noqa: S102 - the README's own code
        except Exception as e:  # noqa: BLE001 - compared with what the README says
            stdout.write(buf.getvalue())
            where = f"{block.file} line {block.line + stmt.lineno - 1}"
            if block.error is None or stmt is not tree.body[-1]:
                raise AssertionError(f"{where}: {type(e).__name__}: {e}") from e
            name, message = block.error
            assert type(e).__name__ == name, f"{where}: raised {type(e).__name__}, not {name}"
            assert re.search(_pattern(message), str(e), re.S), (
                f"{where}: message {str(e)[:300]!r} does not say {message!r}")
            return
        stdout.write(buf.getvalue())
        per_line[stmt.lineno] = buf.getvalue()
    if block.error is not None:
        raise AssertionError(f"{block.file} line {block.line}: the README says it raises "
                             f"{block.error[0]}, but it ran")
    for lineno, expected in block.checks if block.output is None else ():
        printed = per_line.get(lineno, "")
        assert says(expected, printed), (
            f"{block.file} line {block.line + lineno - 1}: prints {printed.rstrip()!r}, the "
            f"README says {expected!r}")
    if block.output is not None:
        assert same_output(block.output, stdout.getvalue()), (
            f"{block.file} line {block.line}: prints\n{stdout.getvalue()}\nthe README says\n"
            f"{block.output}")


@pytest.mark.parametrize("name", FILES)
def test_readme_snippets_run_and_print_what_they_say(name: str, tmp_path: Path) -> None:
    namespace: dict = {"__name__": "__readme__"}
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks(name):
            if not block.skip:
                run(block, namespace)
    finally:
        os.chdir(here)


def test_the_conventions_can_fail() -> None:
    assert says("12.0 9.0", "12.0 9.0\n")
    assert not says("12.0 9.0", "12.0\n")
    assert says("24.0 (exactly twice)", "24.0\n")
    assert says("'L2.n0.z': layer L2", "L2.n0.z\n")
    assert says("True: the identity", "True\n") and not says("True", "False\n")
    assert says("1.0 on this seed", "1.0\n") and not says("1.0 on this seed", "1\n")
    assert says("L1: 4/4 units; ...", "L1: 4/4 units; gradient\nmore")
    assert not says("L1: 3/4 units; ...", "L1: 4/4 units; gradient")
    assert same_output("a  \nb ... c", "a\nb 42 c\n") and not same_output("a\nb", "a\nc")
    marked = [blk for blk in blocks("README.md") if blk.output and "def backward" in blk.output]
    assert marked, "the marked output fence (the compiled source) is read as an output"
    b = blocks("README.md")
    assert b and all(blk.code for blk in b)
