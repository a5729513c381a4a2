#!/usr/bin/env python3
"""Prints the ten longest production functions and files under src/ (test
modules and test-only files left out), the measure issue 21 holds the code
to: no function over ~100 lines, no file over ~600. Prints; does not fail."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
FN = re.compile(r"^\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+([a-z_0-9]+)")
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*\n\s*mod [a-z_0-9]+ \{")
TEST_FILE = re.compile(r"#\[cfg\(test\)\]\s*\n\s*(pub(\([a-z]+\))?\s+)?mod ([a-z_0-9]+);")


def production(path, text):
    m = TEST_MOD.search(text)
    return text[: m.start()] if m else text


def test_only(root):
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(d, f)
            here = d if f in ("mod.rs", "lib.rs") else p[:-3]
            for m in TEST_FILE.finditer(open(p).read()):
                out.add(os.path.normpath(os.path.join(here, m.group(3) + ".rs")))
    return out


def functions(path, lines):
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, seen, j = 0, False, i
        while j < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            code = re.sub(r"'(\\.|[^'\\])'", "''", code)
            depth += code.count("{") - code.count("}")
            seen = seen or "{" in code
            if seen and depth <= 0:
                break
            if not seen and code.rstrip().endswith(";"):
                break
            j += 1
        if seen:
            yield (j - i + 1, f"{path}:{i + 1}", m.group(6))
        i = j + 1 if seen else i + 1


def main():
    skip = test_only(ROOT)
    fns, files = [], []
    for d, _, names in os.walk(ROOT):
        for f in names:
            p = os.path.normpath(os.path.join(d, f))
            if not f.endswith(".rs") or p in skip:
                continue
            text = production(p, open(p).read())
            rel = os.path.relpath(p, os.path.join(ROOT, ".."))
            lines = text.split("\n")
            files.append((len(lines), rel))
            fns.extend(functions(rel, lines))
    fns.sort(reverse=True)
    files.sort(reverse=True)
    print("longest production functions (lines):")
    for n, at, name in fns[:10]:
        print(f"  {n:5}  {name}  {at}")
    print(f"  ({sum(1 for f in fns if f[0] > 100)} over 100 lines)")
    print("longest production files (lines):")
    for n, rel in files[:10]:
        print(f"  {n:5}  {rel}")
    print(f"  ({sum(1 for f in files if f[0] > 600)} over 600 lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
