"""Log-friendly progress (one line, not a redrawn bar, when stderr is not a terminal) and the bound
on decoded pixels in flight (at most one 4K frame at a time across decode threads)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
from PIL import Image

from edgeiqa.progress import LineProgress, progress_bar, progress_write
from edgeiqa.runtime.frames import FrameBudget, peek_pixels


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_into_a_file_is_one_line_and_into_a_terminal_is_tqdm() -> None:
    log = io.StringIO()
    with progress_bar(500, "predict", unit="img", stream=log) as bar:
        assert isinstance(bar, LineProgress)
        for _ in range(500):
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("predict: 500/500 img in ") and "\r" not in log.getvalue()
    tty = _Tty()
    with progress_bar(5, "predict", stream=tty) as bar:
        bar.update(5)
    assert "\r" in tty.getvalue()  # a live bar on a terminal


def test_an_epoch_bar_in_a_log_writes_nothing_and_the_epoch_line_is_plain() -> None:
    log = io.StringIO()
    bar = progress_bar(3, "finetune 1/2", iterable=range(3), leave=False, stream=log)
    assert list(bar) == [0, 1, 2]
    bar.set_postfix(loss="0.1234")
    bar.close()
    progress_write("finetune epoch 1/2: loss 0.1234 val SRCC 0.5", stream=log)
    assert log.getvalue() == "finetune epoch 1/2: loss 0.1234 val SRCC 0.5\n"


def test_a_disabled_bar_is_silent() -> None:
    log = io.StringIO()
    with progress_bar(3, "x", enabled=False, stream=log) as bar:
        bar.update(3)
    assert log.getvalue() == ""


def test_frame_budget_admits_one_4k_frame_at_a_time_but_small_ones_together() -> None:
    budget = FrameBudget(12_000_000)
    uhd = 3840 * 2160

    def hold(pixels: int) -> None:
        with budget.hold(pixels):
            time.sleep(0.02)

    threads = [threading.Thread(target=hold, args=(uhd,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.peak == uhd and budget.in_flight == 0
    small = FrameBudget(12_000_000)
    with small.hold(250_000), small.hold(250_000):  # two small frames fit together
        assert small.in_flight == 500_000
    huge = FrameBudget(12_000_000)
    with huge.hold(40_000_000):  # larger than the budget: admitted alone rather than never
        assert huge.in_flight == 40_000_000


def test_freed_frames_go_back_to_the_os_only_under_a_bound_the_user_set(monkeypatch) -> None:
    """malloc_trim after every 4K frame cost the default path a third of its rate (results/frame_trim.json)."""
    from edgeiqa.runtime import frames, predictor

    trims = []
    monkeypatch.setattr(frames, "release_free_memory", lambda: trims.append(1))
    frame = 3840 * 2160 * frames.FRAME_BYTES_PER_PIXEL

    settings = {  # (max_decoded_pixels, max_memory) -> trims per 4K frame
        (predictor.AUTO, None): 0,  # the default
        (None, None): 0,  # --unbounded-frames
        (frames.DEFAULT_BUDGET_PIXELS, None): 1,  # --one-frame
        (predictor.AUTO, "8GB"): 1,  # --max-memory
    }
    for (pixels, memory), expected in settings.items():
        trims.clear()
        with predictor.frame_budget(pixels, memory).hold(frame):
            pass
        assert len(trims) == expected, (pixels, memory)


def test_peek_pixels_reads_the_header_only(tmp_path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((30, 70, 3), np.uint8)).save(path)
    assert peek_pixels(path) == 2100 and peek_pixels(path.read_bytes()) == 2100
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    assert peek_pixels(tmp_path / "bad.jpg") == 0 and peek_pixels(Image.new("RGB", (5, 5))) == 0
