"""Fail when installing the package changed what was installed before it.

Usage: check_preinstalled.py PINS BEFORE AFTER, with PINS a requirements file of
``name==version`` lines (Colab's preinstalled packages) and BEFORE/AFTER the output of
``pip freeze`` around ``pip install .``. Exit 1, naming each package, when a pin was not
installed as pinned, or when any package of BEFORE has another version (or is gone) in
AFTER: a chapter's install cell must leave Colab's packages as Colab ships them.
"""

from __future__ import annotations

import re
import sys


def versions(path: str) -> dict:
    """``{normalized name: version}`` of the ``name==version`` lines of a file."""
    found = {}
    for line in open(path, encoding="utf-8"):
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def main(pins_path: str, before_path: str, after_path: str) -> int:
    pins, before, after = versions(pins_path), versions(before_path), versions(after_path)
    problems = [f"{name}: pinned {pin}, installed {before.get(name, 'nothing')}"
                for name, pin in pins.items() if before.get(name) != pin]
    problems += [f"{name}: {version} before `pip install .`, {after.get(name, 'removed')} after"
                 for name, version in before.items() if after.get(name) != version]
    for problem in problems:
        print(f"check_preinstalled: {problem}", file=sys.stderr)
    added = sorted(set(after) - set(before))
    verdict = "FAILED" if problems else f"{len(before)} packages unchanged"
    print(f"check_preinstalled: {verdict}; added: {', '.join(added) or 'nothing'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
