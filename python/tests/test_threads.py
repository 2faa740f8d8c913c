"""Long calls release the GIL: another Python thread runs while the model samples."""

import threading
import time

import pixelrnn  # noqa: F401  (the fixtures load through it)


def test_another_thread_runs_during_sample(model):
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    worker = threading.Thread(target=count)
    worker.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        before = counter[0]
        model.sample(48, seed=1)
        during = counter[0] - before
        seconds = time.perf_counter() - start
    finally:
        stop.set()
        worker.join()
    # Holding the GIL for the whole call would leave the counter where it was (a switch or two
    # at most, each one 5 ms of counting); released, it counts all along.
    assert seconds > 0.05, f"the sample took {seconds:.3f} s: too short to tell"
    assert during > 20000, f"the other thread counted {during} in {seconds:.3f} s"
