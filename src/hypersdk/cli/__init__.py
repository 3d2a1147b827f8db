"""The ``hypersdk`` command line (install the ``cli`` extra: ``pip install 'hypersdk[cli]'``).

Run ``hypersdk --help``. Exit codes, one per error family, are listed in
``hypersdk.cli._exit`` and in the CLI docs.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        from hypersdk.cli._app import main as run
    except ModuleNotFoundError as exc:  # the cli extra is not installed
        import sys

        sys.stderr.write(
            f"hypersdk: the command line needs {exc.name!r}: pip install 'hypersdk[cli]'\n"
        )
        return 2
    return run(argv)


def _console_main() -> None:  # the console-script entry point
    import sys

    sys.exit(main())
