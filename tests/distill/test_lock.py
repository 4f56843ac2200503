"""One writer per run folder: a live holder refuses a second writer with one line; a lock left
by a killed process is taken over; the lock is released on success and on error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from protdistill.errors import InputError
from protdistill.io.lock import LOCK, run_lock


def test_a_live_writer_refuses_a_second(tmp_path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / LOCK
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        with pytest.raises(InputError, match=f"pid {holder.pid}") as err, run_lock(tmp_path):
            pass
        assert "\n" not in str(err.value) and lock.exists()  # the holder's lock is untouched
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path):  # its writer is gone now: stale, taken over
        assert json.loads((tmp_path / LOCK).read_text())["pid"] != holder.pid
    assert not (tmp_path / LOCK).exists()


def test_released_on_error_and_reentered_after(tmp_path) -> None:
    with pytest.raises(RuntimeError), run_lock(tmp_path):
        assert (tmp_path / LOCK).exists()
        raise RuntimeError("training failed")
    assert not (tmp_path / LOCK).exists()
    (tmp_path / LOCK).write_text("not json")  # unreadable: treated as stale
    with run_lock(tmp_path):
        pass
    assert not (tmp_path / LOCK).exists()
