"""`pixelrnn.train`: the CLI's flags, its run directory, progress events, and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import pixelrnn
from conftest import tiny_options


def test_train_reports_events_and_resumes(data_dir, tmp_path):
    events = []
    out = tmp_path / "run"
    result = pixelrnn.train(out, progress=False, callback=events.append, **tiny_options(data_dir, steps=3, valid_every=3))
    assert result.step == 3 and not result.interrupted and result.best_valid_bits_per_dim is not None
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds.count("step") == 3 and "validation" in kinds and "checkpoint" in kinds
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    # The run's metrics.jsonl holds the same steps, and resume continues it.
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if e["event"] == "step"] == [1, 2, 3]
    more = pixelrnn.train(out, progress=False, resume=True, steps=5)
    assert more.step == 5
    assert pixelrnn.load(out, checkpoint="last").step == 5


def test_a_config_dict_works_as_keywords(data_dir, tmp_path):
    result = pixelrnn.train(tmp_path / "run", config=tiny_options(data_dir, steps=2), progress=False)
    assert result.step == 2


def test_the_clis_refusals_come_back_as_exceptions(data_dir, tmp_path):
    with pytest.raises(pixelrnn.PixelRnnError, match="--no-such-flag"):
        pixelrnn.train(tmp_path / "a", progress=False, no_such_flag=3, **tiny_options(data_dir))
    with pytest.raises(pixelrnn.PixelRnnError, match="--model"):
        pixelrnn.train(tmp_path / "b", progress=False, **tiny_options(data_dir, model="lstm-9000"))
    done = tmp_path / "c"
    pixelrnn.train(done, progress=False, **tiny_options(data_dir, steps=1))
    with pytest.raises(pixelrnn.PixelRnnError, match="already holds a run"):
        pixelrnn.train(done, progress=False, **tiny_options(data_dir, steps=1))
    with pytest.raises(pixelrnn.PixelRnnError, match="--distributed"):
        pixelrnn.train(tmp_path / "d", progress=False, distributed="mpi", **tiny_options(data_dir))


def test_an_exception_in_the_callback_stops_training_after_a_checkpoint(data_dir, tmp_path):
    def fail(event):
        if event["event"] == "step" and event["step"] == 2:
            raise RuntimeError("enough")

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="enough"):
        pixelrnn.train(out, progress=False, callback=fail, **tiny_options(data_dir, steps=50))
    assert pixelrnn.load(out, checkpoint="last").step == 2


def test_ctrl_c_saves_a_checkpoint_and_raises_keyboard_interrupt(data_dir, tmp_path):
    out = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import signal, sys
        # A process started in the background by a shell without job control inherits SIGINT
        # ignored, and Python then installs no handler: install it, as an interactive one has.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import pixelrnn
        from conftest import tiny_options
        from pathlib import Path

        def tell(event):
            if event["event"] == "step":
                print("step", event["step"], flush=True)
        try:
            pixelrnn.train({str(out)!r}, progress=False, callback=tell, **tiny_options(Path({str(data_dir)!r}), steps=100000))
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(3)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = child.stdout.readline()
        assert first.startswith("step"), first + child.stderr.read()
        child.send_signal(signal.SIGINT)
        rest, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 3, rest + err
    assert rest.strip().endswith("KeyboardInterrupt")
    last_step = int([line for line in [first, *rest.splitlines()] if line.startswith("step")][-1].split()[1])
    # The checkpoint of the step it stopped at (the step under way when the signal came, whose
    # event is not passed on), which resume continues from.
    saved = pixelrnn.load(out, checkpoint="last").step
    assert last_step <= saved <= last_step + 1
    assert pixelrnn.train(out, progress=False, resume=True, steps=saved + 1).step == saved + 1
