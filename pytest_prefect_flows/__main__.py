"""`python -m pytest_prefect_flows COMMAND`: the plugin's commands outside a pytest session.

`merge REPORT...` unites the JSON flow-coverage reports of CI shards and applies the gates
(`coverage/merge.py`). Exit codes are pytest's: 0 passed, 1 a gate failed, 4 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from pytest_prefect_flows.coverage import merge


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(merge.EXIT_USAGE, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="python -m pytest_prefect_flows")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    merge.add_arguments(
        commands.add_parser(
            "merge",
            help="merge the JSON reports of CI shards and apply the gates to them together",
            description="Merge the JSON flow-coverage reports of CI shards (--prefect-report=json:PATH) "
            "and apply the gates to the whole suite they ran.",
        )
    )
    args = parser.parse_args(argv)
    return merge.run(args)


if __name__ == "__main__":
    sys.exit(main())
