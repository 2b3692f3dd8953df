"""The server's start-up objects are kept out of the collector's full passes, not its garbage."""

from __future__ import annotations

import subprocess
import sys

# Run in a process of its own: freezing the test runner's heap would outlive the test.
PROBE = """
import gc, logging, weakref
from jupyter_interp_ext.heap import freeze_long_lived

class Node:
    pass

garbage = Node(); garbage.me = garbage  # a cycle only the collector frees
gone = weakref.ref(garbage)
del garbage
kept = [Node()]
freeze_long_lived(logging.getLogger())
assert gone() is None, "garbage was frozen instead of collected"
assert gc.get_freeze_count() > 0
assert not any(o is kept for o in gc.get_objects()), "a live object is still walked"
later = [Node()]
assert any(o is later for o in gc.get_objects()), "objects made later must be collected as usual"
"""


def test_freezing_collects_garbage_first_and_spares_later_objects():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
