"""A started process leaves what it allocated to start out of its later collections (``deploy.bootstrap``), after
collecting the garbage among it: garbage frozen would stay for the process's life."""

from __future__ import annotations

import gc
import weakref

from deploy.bootstrap import leave_start_up_out_of_collections


class _Cycle:
    def __init__(self) -> None:
        self.itself = self  # only the cycle collector frees it


def test_start_up_garbage_is_collected_and_what_lives_is_left_out_of_later_collections() -> None:
    garbage, kept = _Cycle(), _Cycle()
    gone = weakref.ref(garbage)
    del garbage
    try:
        leave_start_up_out_of_collections()
        assert gone() is None
        assert not any(tracked is kept for tracked in gc.get_objects())  # in the permanent generation
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
