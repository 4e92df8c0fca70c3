#!/usr/bin/env python3
"""Source files over 900 lines and functions over 150 lines, in herald's C.

Functions are found by the house layout (clang-format: return type on its own
line, the name at column 0, the opening `{` alone at column 0, the body
closed by a `}` at column 0); a prototype at column 0 (it ends with `;`
before any `{`) is not a function. A function whose body is mostly a table
(initialiser rows) is still counted, so name it in ALLOW below with the
reason. Exit 0 when nothing is over, 1 when anything is.

    tools/sizes.py [ROOT]      (default: the repository holding tools/)
"""
import os
import re
import sys

MAX_FILE, MAX_FUNC = 900, 150
DIRS = ["core", "layer", "actors", "transport", "cli", "bench", "tests"]
ALLOW = {}  # "path:function": "why"
START = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(")


def functions(lines):
    """(name, first line index, line count) of each function definition."""
    name, start, body = None, 0, False
    for i, line in enumerate(lines):
        if name is None:
            m = START.match(line)
            if m and not line.rstrip().endswith(";"):
                name, start, body = m.group(1), i, False
        elif not body:
            if line.startswith("{"):
                body = True
            elif line.rstrip().endswith(";") or START.match(line):
                # a prototype over several lines, or a macro use: no body
                name = None
                m = START.match(line)
                if m and not line.rstrip().endswith(";"):
                    name, start = m.group(1), i
        elif line.startswith("}"):
            yield name, start, i - start + 1
            name = None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    bad = 0
    for d in DIRS:
        top = os.path.join(root, d)
        if not os.path.isdir(top):
            continue
        for dp, _, files in sorted(os.walk(top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dp, f)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    lines = fh.read().splitlines()
                if len(lines) > MAX_FILE:
                    bad += 1
                    print(f"{rel}: {len(lines)} lines (max {MAX_FILE})")
                for name, start, n in functions(lines):
                    if n > MAX_FUNC and f"{rel}:{name}" not in ALLOW:
                        bad += 1
                        print(f"{rel}:{start + 1}: {name}() {n} lines (max {MAX_FUNC})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
