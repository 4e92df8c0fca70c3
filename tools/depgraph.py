#!/usr/bin/env python3
"""Which source file of herald depends on which: the include graph and the
link-time graph, checked for circles and for calls against the module order.

Include graph: every `#include "..."` between the project's own files under
core/ layer/ actors/ transport/ cli/ (read from the source tree).
Link graph: the object files of a CMake build (nm); every defined global
symbol maps to the .c file that defines it, and A -> B when A uses a symbol
that B defines.

In either graph it prints every cycle among files (strongly connected
components of more than one file) and every edge that runs against the module
order cli -> transport -> actors -> layer -> core (a lower module may not
include or call a higher one). Exit 0 when there is none, 1 when there is
any, 2 when the build has no object files.

    tools/depgraph.py [BUILD_DIR [SOURCE_DIR]]   (defaults: build, the
                                                 repository holding tools/)
"""
import os
import re
import subprocess
import sys

ORDER = ["core", "layer", "actors", "transport", "cli"]  # lower may not call higher
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def objects(build):
    for root, _, files in os.walk(build):
        if "/CMakeFiles/herald_" not in root + "/":
            continue
        for f in files:
            if f.endswith(".c.o"):
                yield os.path.join(root, f)


def source_of(obj):
    # build/CMakeFiles/herald_layer.dir/layer/msg.c.o -> layer/msg.c
    rel = obj.split(".dir/", 1)[1]
    return rel[: -len(".o")]


def nm(obj, *flags):
    out = subprocess.run(["nm", *flags, obj], capture_output=True, text=True, check=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            syms.add(parts[-1])
    return syms


def link_graph(build):
    objs = sorted(set(objects(build)))
    if not objs:
        return None
    defined, used = {}, {}
    for o in objs:
        src = source_of(o)
        # Globals only: a file-static function of the same name as another
        # file's global must not take the global's edges.
        for s in nm(o, "--defined-only", "--extern-only"):
            defined.setdefault(s, src)
        used[src] = nm(o, "--undefined-only")
    edges = {src: set() for src in used}
    for src, syms in used.items():
        for s in syms:
            d = defined.get(s)
            if d and d != src:
                edges[src].add(d)
    return edges


def include_graph(src_dir):
    edges = {}
    for mod in ORDER:
        top = os.path.join(src_dir, mod)
        if not os.path.isdir(top):
            continue
        for dp, _, files in os.walk(top):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dp, f)
                rel = os.path.relpath(path, src_dir)
                targets = set()
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        name = m.group(1)
                        # "x.h" is looked up beside the file, then from the root
                        for cand in (os.path.join(os.path.dirname(rel), name), name):
                            cand = os.path.normpath(cand)
                            if os.path.isfile(os.path.join(src_dir, cand)):
                                targets.add(cand)
                                break
                edges[rel] = targets - {rel}
    for targets in list(edges.values()):
        for t in targets:
            edges.setdefault(t, set())
    return edges


def cycles(edges):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sccs


def report(kind, edges):
    bad = 0
    sccs = cycles(edges)
    for comp in sccs:
        bad += 1
        print(f"{kind} cycle: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(edges[a] & set(comp)):
                print(f"    {a} -> {b}")
    for a in sorted(edges):
        ma = a.split("/")[0]
        for b in sorted(edges[a]):
            mb = b.split("/")[0]
            if ma in ORDER and mb in ORDER and ORDER.index(mb) > ORDER.index(ma):
                bad += 1
                print(f"{kind} upward: {a} -> {b}")
    n_edges = sum(len(e) for e in edges.values())
    print(f"{kind}: {len(edges)} files, {n_edges} edges, {len(sccs)} cycles")
    return bad


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    src_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    links = link_graph(build)
    if links is None:
        print(f"depgraph: no herald object files under {build}", file=sys.stderr)
        return 2
    bad = report("include", include_graph(src_dir))
    bad += report("link", links)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
