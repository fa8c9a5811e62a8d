"""Bulk work beside the event loop (a game import): how it keeps from stopping the loop.

Three process-wide settings and one habit: what exists once the app has started is kept out of
the collector's sight (`freeze_startup`), no garbage collection while an import makes millions
of objects (`collection_paused`), a short GIL switch interval (`GIL_SWITCH_SECONDS`, set at
start-up), and big lists freed item by item in the worker thread (`empty_in_steps`).

CPython's collector looks at every tracked object of the process in its oldest generation, and
it holds the GIL while it does: during an import of a 10,000-turn game (a million parsed values,
validated models and rows) each full collection stopped every request of the process for about
0.2 s, several times per import. What an import makes is not garbage until the import ends, and
then reference counting frees it (it holds no cycles), so collecting meanwhile finds nothing.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A thread that wants the GIL waits this long before the one holding it is asked to let go. The
# event loop wants it back after every wait for the network or a database thread: at Python's
# default (5 ms), a request that needs it thirty times waited 0.15 s behind an import in a
# thread. At 1 ms the longest wait of another player during a 10,000-turn import fell from
# 142 ms to 72 ms; the import itself took no longer.
GIL_SWITCH_SECONDS = 0.001


def freeze_startup() -> None:
    """Put everything alive now in the collector's permanent generation, once started.

    A started app holds about a million tracked objects that live as long as the process
    (modules, the SDK's and the ORM's classes, the catalog). Every full collection looked at
    all of them with the GIL held: 125-145 ms with every request and stream of the process
    stopped, at start-up and then whenever enough new objects had piled up, with nobody doing
    anything heavy (bench/no_freeze, idle row). Frozen, they are no longer looked at; what of
    them is freed later is freed by reference counting as before.
    """
    gc.collect()  # start-up's own garbage goes first, rather than being kept for good
    gc.freeze()


_lock = threading.Lock()
_paused = 0  # bulk jobs running (threads and the event loop alike): the last one resumes
_resume = False  # whether the collector was on when the first of them began


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause automatic garbage collection for the block; concurrent blocks share one pause.

    The block frees what it made as it goes (chunks written, lists emptied in steps), so
    when the last block ends the collector simply resumes: it finds little that is new, and
    the start-up objects stay frozen. A collector the process had disabled stays disabled.
    """
    global _paused, _resume
    with _lock:
        _paused += 1
        if _paused == 1:
            _resume = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _resume:
                gc.enable()


def empty_in_steps(items: list[object]) -> None:
    """Empty a big list one item at a time; call it in a thread, on the list's last reference.

    Freeing a list frees its items in one C call that holds the GIL throughout (20,000 parsed
    messages: about 0.1 s with the event loop stopped); item by item, Python hands the GIL over
    between them.
    """
    while items:
        items.pop()
