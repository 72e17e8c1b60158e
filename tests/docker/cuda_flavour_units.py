#!/usr/bin/env python3
"""The translation units whose compiler input differs between the CPU and the CUDA flavour.

usage: cuda_flavour_units.py SOURCE_ROOT CPU_COMPILE_COMMANDS CUDA_COMPILE_COMMANDS [--must FILE]...

Prints, one per line, the object files (relative to the CUDA build directory) that the CUDA compile
check must build, then a summary line on stderr; exits 1 when a FILE given with --must (a path under
SOURCE_ROOT) is not among the selected units (a unity batch counts the files it includes). A translation
unit of the CUDA configuration is selected when
  - the CPU configuration has no object of the same path (a unit only the CUDA flavour builds, such as
    tests/test_nccl_gpu.cpp), or
  - a project file it includes, directly or through other project files, names a macro that only the
    CUDA configuration defines (NEFTUNE_TORCH_CUDA, NEFTUNE_WITH_NCCL, C10_CUDA_NO_CMAKE_CONFIGURE_FILE:
    read off the two compile commands, not listed here), or
  - a project file it includes writes `#include <X>` for a header X found in an include directory that
    only the CUDA configuration has (the CUDA toolkit's): there the two flavours may see different files.
Any other unit is preprocessed from the same files with the same macros in both flavours, so its CPU
compile (the LibTorch 2.6 build beside this check) already compiled exactly what the CUDA flavour would.
Conditional includes are followed whatever their condition, so the selection can only be too large.
"""
import json
import os
import re
import shlex
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def load(path):
    with open(path) as f:
        entries = json.load(f)
    out = {}
    for e in entries:
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        obj = e.get("output")
        if obj is None:  # older CMake: the -o argument
            obj = args[args.index("-o") + 1]
        if obj.endswith((".gch", ".pch")):
            continue
        # The two trees differ in their own path (generated headers, the sentencepiece module's
        # directory): compared as @BUILD@, it is not a difference between the flavours.
        build = os.path.normpath(e["directory"])
        args = [a.replace(build, "@BUILD@") for a in args]
        out[obj] = (os.path.normpath(os.path.join(e["directory"], e["file"])), args)
    return out


def flags(args, prefix):
    found = set()
    for i, a in enumerate(args):
        for p in prefix:
            if a == p and i + 1 < len(args):
                found.add(args[i + 1])
            elif a.startswith(p) and len(a) > len(p):
                found.add(a[len(p):])
    return found


def main():
    args, must = [], []
    argv = sys.argv[1:]
    while argv:
        a = argv.pop(0)
        if a == "--must" and argv:
            must.append(argv.pop(0))
        else:
            args.append(a)
    if len(args) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    root = os.path.realpath(args[0])
    cpu, cuda = load(args[1]), load(args[2])
    if not cuda:
        sys.exit("cuda_flavour_units.py: no translation units in " + args[2])

    cpu_defs = set().union(*(flags(a, ["-D"]) for _, a in cpu.values())) if cpu else set()
    cuda_defs = set().union(*(flags(a, ["-D"]) for _, a in cuda.values()))
    macros = sorted({d.split("=", 1)[0] for d in cuda_defs - cpu_defs})
    cpu_dirs = set().union(*(flags(a, ["-I", "-isystem"]) for _, a in cpu.values())) if cpu else set()
    cuda_dirs = set().union(*(flags(a, ["-I", "-isystem"]) for _, a in cuda.values()))
    extra_dirs = sorted(d for d in cuda_dirs - cpu_dirs if "@BUILD@" not in d and os.path.isdir(d))
    if not macros:
        sys.exit("cuda_flavour_units.py: the CUDA configuration defines no macro the CPU one lacks: not a CUDA "
                 "configuration?")
    macro_re = re.compile(r"\b(" + "|".join(map(re.escape, macros)) + r")\b")

    cache = {}

    def info(path):
        """(names a CUDA-only macro or header, [project files it includes])"""
        if path not in cache:
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                cache[path] = (False, [])
                return cache[path]
            marked = bool(macro_re.search(text))
            deps = []
            for kind, name in INCLUDE.findall(text):
                if kind == "<" and any(os.path.isfile(os.path.join(d, name)) for d in extra_dirs):
                    marked = True
                for base in (os.path.dirname(path), root):
                    cand = os.path.normpath(os.path.join(base, name))
                    if cand.startswith(root + os.sep) and os.path.isfile(cand):
                        deps.append(cand)
                        break
            cache[path] = (marked, deps)
        return cache[path]

    def differs(src):
        seen, todo = set(), [src]
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            marked, deps = info(p)
            if marked:
                return True
            todo.extend(deps)
        return False

    selected, members = [], set()
    for obj, (src, _) in sorted(cuda.items()):
        if obj not in cpu or differs(src):
            selected.append(obj)
            # The unit's own file, and for a unity batch the project files it includes.
            members.add(os.path.relpath(src, root))
            members.update(os.path.relpath(d, root) for d in info(src)[1] if d.endswith((".cpp", ".cc", ".cxx")))
    for obj in selected:
        print(obj)
    print(f"{len(selected)} of {len(cuda)} translation units differ between the CPU and CUDA flavours "
          f"(macros {', '.join(macros)}; CUDA-only include directories {', '.join(extra_dirs) or 'none'})",
          file=sys.stderr)
    missing = [m for m in must if os.path.normpath(m) not in members]
    if missing:
        sys.exit("cuda_flavour_units.py: not among the selected units: " + ", ".join(missing))


if __name__ == "__main__":
    main()
