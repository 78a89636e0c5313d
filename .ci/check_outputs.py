"""Fail unless an executed notebook's outputs (not its code) contain each expected text.

Usage: check_outputs.py NOTEBOOK TEXT [TEXT ...]; a TEXT starting with ``!`` must not occur.
The chapters print a sentence, not an error, when they find no recorded result, so
executing them without error does not show that the recorded results were found.
"""

from __future__ import annotations

import json
import sys


def output_text(notebook: dict) -> str:
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            for key, value in output.get("data", {}).items():
                if key.startswith("text/"):
                    parts.append("".join(value))
    return "\n".join(parts)


def main(path: str, *texts: str) -> int:
    shown = output_text(json.loads(open(path, encoding="utf-8").read()))
    problems = [f"{path}: the outputs show {text[1:]!r}" for text in texts if text.startswith("!") and text[1:] in shown]
    problems += [f"{path}: no output shows {text!r}" for text in texts if not text.startswith("!") and text not in shown]
    print("\n".join(problems) or f"{path}: outputs show what they should")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
