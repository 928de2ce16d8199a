"""``edgeiqa models [NAME]``: the bundled models, one line each, or one model's whole card."""

from __future__ import annotations

import argparse
import json
import sys

from edgeiqa.runtime.zoo import NO_MODEL, bundled, list_bundled


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="print this bundled model's whole card (JSON)")


def run_models(args: argparse.Namespace) -> int:
    """Exit 0 with the list (or the card); exit 1 and one line on stderr when nothing is bundled."""
    if args.name:
        print(json.dumps(bundled(args.name).card, indent=1))
        return 0
    models = list_bundled()
    if not models:  # said plainly, and not a success: a script must not go on to score with nothing
        print(f"edgeiqa: {NO_MODEL}", file=sys.stderr)
        return 1
    print("\n".join(model.summary_line() for model in models))
    return 0
