"""Ending a command-line tool without the C library destructors of torch's CUDA build.

After Python has shut down, the C++ destructors of the CUDA build of torch's libraries
(cuBLASLt, cuSPARSELt) touch about 0.1 GB of their pages, even in a process that never used
CUDA: ``import torch`` alone peaks at 686 MB before exit and at 800 MB as the kernel counts the
process (measured on the project's CPU machine, ``docs/speed.md``). Nothing a finished tool
needs happens there. :func:`exit_without_teardown` runs Python's exit functions (logging's
flush, multiprocessing's clean-up of its workers, every ``atexit`` handler), flushes the
standard streams and ends the process before the library destructors.
"""
import atexit
import ctypes
import os
import sys
from typing import NoReturn

__all__ = ['FULL_EXIT_ENV', 'exit_without_teardown']

#: Set to 1 to end the tools through the interpreter's full shutdown instead.
FULL_EXIT_ENV = 'MGENET_FULL_EXIT'


def exit_without_teardown(status: int = 0) -> NoReturn:
    """End the process after Python's exit functions, skipping the C library destructors.

    Call it only when the program has finished: objects still alive are not finalised
    (Python does not promise that at exit either), and files the program left open are closed
    by the system without their Python buffers being flushed. With ``MGENET_FULL_EXIT=1`` in
    the environment it is ``sys.exit(status)``.

    Args:
        status (int): The exit status.
    """
    if os.environ.get(FULL_EXIT_ENV) == '1':
        sys.exit(status)
    atexit._run_exitfuncs()  # what the interpreter's shutdown would run first
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):  # closed, or a broken pipe: nothing left to save
                pass
    try:
        ctypes.CDLL(None).fflush(None)  # what C code printed into the C library's buffers
    except (OSError, AttributeError):  # no C library to load by that name
        pass
    os._exit(status)
