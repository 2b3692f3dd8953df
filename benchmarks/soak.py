"""Load and soak: many clients at once with every result checked, then a long sequential run.

Usage: python benchmarks/soak.py [--contexts 8] [--runs 25] [--sessions 4] [--commands 25]
                                 [--sequential 1000]

Talks only to a server it starts itself on 127.0.0.1. Exits non-zero if any result is lost,
mixed up or duplicated, or if the server's open file descriptors or memory keep growing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from jupyter_interp_ext.testing import ServerProcess, soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=8)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--commands", type=int, default=25)
    parser.add_argument("--sequential", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as runtime:
        server = ServerProcess(Path(root), Path(runtime))
        try:
            report = soak(
                server,
                contexts=args.contexts,
                runs=args.runs,
                sessions=args.sessions,
                commands=args.commands,
                sequential=args.sequential,
            )
        finally:
            server.stop()
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["problems"] else 0)


if __name__ == "__main__":
    main()
