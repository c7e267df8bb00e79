"""The ``telic`` command the package installs (``[project.scripts]``).

It is the program ``cargo run --bin telic`` builds, not a copy: the
command line goes to ``telic_sim::cli`` through the native module, which
runs it with the interpreter lock released. Importing :mod:`telic` first
names the package's data folder and the ONNX Runtime library of the
``onnxruntime`` wheel, so the command works from any folder.
"""

from __future__ import annotations

import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    """Runs ``telic`` with ``argv`` (default: this process's arguments) and
    returns its exit status."""
    from telic import _native

    args = sys.argv[1:] if argv is None else argv
    # Ctrl-C as in the cargo program: `run`, `collect` and `soak` install
    # their own handlers (stop after the episodes under way; twice quits);
    # every other command ends at once. Python's handler would only raise
    # KeyboardInterrupt after the command returned.
    if threading.current_thread() is not threading.main_thread():
        return _native.cli_main(["telic", *args])
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        return _native.cli_main(["telic", *args])
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
