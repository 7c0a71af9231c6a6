"""The seed project's ``tvault`` command line, mapped onto ``git tvault find/diff``.

Scripts written for the seed keep working unchanged:

    tvault --find_flag --condition hash   --hash H
    tvault --find_flag --condition result --min A --max B
    tvault --find_flag --condition tag    --tag_type K --tag V
    tvault --diff_flag --sha1 H1 --index1 I1 --sha2 H2 --index2 I2

Anything else (``tvault log``, ``tvault find --where ...``) goes to ``git tvault``.
"""

from __future__ import annotations

import argparse
import sys

from tvault_git import cli

_CONDITIONS = ("hash", "result", "tag")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tvault", description="Seed-compatible front end of git tvault (see 'git tvault --help')."
    )
    p.add_argument("--find_flag", action="store_true", help="search entries (with --condition)")
    p.add_argument(
        "--diff_flag", action="store_true", help="diff two entries given by --sha1/--index1 and --sha2/--index2"
    )
    p.add_argument("--condition", choices=_CONDITIONS, help="what --find_flag searches by")
    p.add_argument("--hash", help="training commit (any commit-ish)")
    p.add_argument("--min", dest="min_", metavar="MIN", help="smallest result (inclusive)")
    p.add_argument("--max", dest="max_", metavar="MAX", help="largest result (inclusive)")
    p.add_argument("--tag_type", help="tag key")
    p.add_argument("--tag", help="tag value")
    p.add_argument("--sha1")
    p.add_argument("--index1", default="0")
    p.add_argument("--sha2")
    p.add_argument("--index2", default="0")
    return p


def translate(argv: list[str]) -> list[str]:
    """Seed flags -> ``git tvault`` arguments; exits with a usage message on bad flags."""
    p = _parser()
    a, rest = p.parse_known_args(argv)
    if a.find_flag == a.diff_flag:
        p.error("give exactly one of --find_flag or --diff_flag")
    if a.find_flag:
        if a.condition == "hash" or (a.condition is None and a.hash):
            if not a.hash:
                p.error("--condition hash needs --hash COMMIT")
            out = ["find", "--hash", a.hash]
        elif a.condition == "result" or (a.condition is None and (a.min_ or a.max_)):
            if a.min_ is None and a.max_ is None:
                p.error("--condition result needs --min and/or --max")
            out = (
                ["find"]
                + (["--min", a.min_] if a.min_ is not None else [])
                + (["--max", a.max_] if a.max_ is not None else [])
            )
        elif a.condition == "tag" or (a.condition is None and a.tag_type):
            if a.tag_type is None or a.tag is None:
                p.error("--condition tag needs --tag_type KEY and --tag VALUE")
            out = ["find", "--tag", a.tag_type, a.tag]
        else:
            p.error("--find_flag needs --condition hash, result or tag")
        return out + rest
    if not a.sha1 or not a.sha2:
        p.error("--diff_flag needs --sha1 and --sha2 (and --index1/--index2, default 0)")
    return ["diff", f"{a.sha1}:{a.index1}", f"{a.sha2}:{a.index2}"] + rest


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if (args and not args[0].startswith("-")) or not args or args[0] in ("-h", "--help", "--version", "-C"):
        if args and args[0] in ("-h", "--help"):
            _parser().print_help()
            print("\nAll other commands: git tvault --help")
            sys.exit(0)
        cli.main(args)
        return
    cli.main(translate(args))


if __name__ == "__main__":
    main()
