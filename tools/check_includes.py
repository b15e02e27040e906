#!/usr/bin/env python3
"""The include graph follows the pipeline: a file may include headers of its own module and of
modules ranked below it, never sideways or upward. Run by `make test` (test_include_order);
exits 1 and names each offending line when an edge goes against the order.

    util -> format, assets, dist -> tokenizer -> model -> backend/cpu -> nn -> backend -> engine
         -> train, eval -> data, serve -> pipeline -> CLI (tools/politune)

backend/cpu holds the CPU kernels the layers (nn/) are written with; backend/ itself (the
table of operations, src/backend/*.c) and the other backends (backend/cuda/) sit above nn/,
whose functions the CPU's table points at.

Modules of the same rank do not include each other (train and eval meet through the training
hook, data and serve through engine/batcher). include/politune.h is the public header: it
includes no internal header, and any file may include it. Usage: check_includes.py [ROOT]"""
import os
import re
import sys

RANKS = {
    "util": 0,
    "format": 1, "assets": 1, "dist": 1,
    "tokenizer": 2,
    "model": 3,
    "backend/cpu": 4,
    "nn": 5,
    "backend": 6,
    "engine": 7,
    "train": 8, "eval": 8,
    "data": 9, "serve": 9,
    "pipeline": 10,
    "cli": 11,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(rel):
    """The module a source file belongs to (None: not checked, e.g. tests/)."""
    parts = rel.split("/")
    if parts[:3] == ["src", "backend", "cpu"]:
        return "backend/cpu"
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    if parts[:2] == ["tools", "politune"]:
        return "cli"
    if parts[0] == "include":
        return "public"
    return None


def target_of(name, own):
    """The module an include names: "nn/real.h" -> nn; a bare "cli.h" is the file's own."""
    if name == "politune.h":
        return "public"
    if "/" not in name:
        return own
    if name.startswith("backend/cpu/"):
        return "backend/cpu"
    return name.split("/")[0]


def check(root):
    errors = []
    for top in ("src", "tools/politune", "include"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(d, f)
                rel = os.path.relpath(path, root)
                own = module_of(rel)
                if own is None:
                    continue
                if own not in RANKS and own != "public":
                    errors.append(f"{rel}: module '{own}' has no rank in tools/check_includes.py")
                    continue
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        to = target_of(m.group(1), own)
                        if to == own or to == "public" and own != "public":
                            continue
                        if own == "public":
                            errors.append(f"{rel}:{n}: the public header includes the internal header \"{m.group(1)}\"")
                        elif to not in RANKS:
                            errors.append(f"{rel}:{n}: \"{m.group(1)}\": unknown module '{to}'")
                        elif RANKS[to] >= RANKS[own]:
                            way = "sideways" if RANKS[to] == RANKS[own] else "upward"
                            errors.append(f"{rel}:{n}: {own} (rank {RANKS[own]}) includes \"{m.group(1)}\" of {to} "
                                          f"(rank {RANKS[to]}): {way} against the pipeline")
    return errors


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    if not os.path.isdir(os.path.join(root, "src")):
        print(f"check_includes: {root}: no src/ folder", file=sys.stderr)
        return 2
    errors = check(root)
    for e in errors:
        print(e)
    if errors:
        print(f"check_includes: {len(errors)} include(s) against the pipeline order", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
