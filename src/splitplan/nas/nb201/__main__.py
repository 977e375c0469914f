"""``python -m splitplan.nas.nb201``: rebuild the shipped table (``data``) or re-measure the
primitive times on this CPU (``op-times``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from .model import measure_op_times
from .table import DATA_FILE, OP_TIMES_FILE, build_data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m splitplan.nas.nb201")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="rebuild the shipped NB201 table from ../shared/data")
    d.add_argument("--shared", default="../shared/data")
    d.add_argument("-o", "--out", default=str(DATA_FILE))
    t = sub.add_parser("op-times", help="measure the primitive times on this CPU")
    t.add_argument("-o", "--out", default=str(OP_TIMES_FILE))
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    if args.command == "data":
        path = build_data(args.shared, args.out)
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    else:
        table = measure_op_times(repeats=args.repeats, threads=args.threads)
        Path(args.out).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out} ({table['machine']})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
