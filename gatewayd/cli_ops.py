"""Operations commands (backup, restore, member export/erase, purge): registered into the CLI."""
from __future__ import annotations


def register(sub, parser_class) -> None:
    """Add the operations subcommands to SUB (an argparse subparsers object)."""
