"""Entry point that runs nx-27017 with its per-command INFO logging switched off.

nx-27017 logs every wire command at INFO to stdout and to its log file; on the hot path that costs
more than the command. ``python -m imprun.embedded.nx_server <nx-27017 args>`` keeps warnings and
errors and drops the rest, then hands over to nx-27017's own command line.
"""

from __future__ import annotations

import logging


def main() -> None:
    from nx_27017.nx_27017 import main as nx_main

    logging.disable(logging.INFO)
    nx_main()


if __name__ == "__main__":
    main()
