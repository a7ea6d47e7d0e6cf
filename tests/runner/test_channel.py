"""The result channel over a real pipe, frame by frame: what the parent keeps and refuses."""

import os
import struct

import numpy as np

from runner.method.channel import (
    ERROR,
    METRIC,
    PROBS,
    PROGRESS,
    ChannelReader,
    ChannelWriter,
)


def _exchange(write, on_live=None):
    r, w = os.pipe()
    reader = ChannelReader(r, on_live)
    reader.start()
    writer = ChannelWriter(w)
    try:
        write(writer)
    except BrokenPipeError:
        pass  # the parent closed its end on a problem: the writer never blocks
    finally:
        os.close(w)
    return reader.finish()


def test_predictions_metrics_and_progress_come_through():
    live = []
    got = _exchange(lambda w: (w.send_json(METRIC, {"name": "loss", "value": 0.5, "step": 1}),
                               w.send_json(PROGRESS, {"done": 3, "total": 2}),
                               w.send_probs(np.array([0.25, 0.75]))), live.append)
    assert got.problem is None and got.probs.tolist() == [0.25, 0.75]
    assert got.metrics == [{"name": "loss", "value": 0.5, "step": 1, "t": None}]
    assert {"done": 2.0, "total": 2.0} in live  # done is clipped to total


def test_a_second_result_is_a_problem():
    got = _exchange(lambda w: (w.send_probs(np.zeros(2)),
                               w.send_json(ERROR, {"kind": "exception", "message": "late"})))
    assert got.problem == "it sent a second result after its first"


def test_a_frame_cut_short_is_a_problem():
    got = _exchange(lambda w: os.write(w.fd, struct.pack(">cI", PROBS, 100) + b"abc"))
    assert got.problem == "its result channel ended inside a frame"


def test_unknown_error_kinds_are_plain_exceptions_and_texts_are_capped():
    got = _exchange(lambda w: w.send_json(ERROR, {"kind": "infrastructure", "message": "x" * 9000,
                                                  "traceback": 5}))
    assert got.error["kind"] == "exception" and len(got.error["message"]) == 4000
    assert got.error["traceback"] is None


def test_non_finite_and_boolean_metric_values_are_dropped():
    got = _exchange(lambda w: [w.send(METRIC, payload) for payload in (
        b'{"name": "a", "value": NaN}', b'{"name": "b", "value": true}',
        b'{"name": "c", "value": 1e999}', b'{"name": "d", "value": 2}')])
    assert [m["name"] for m in got.metrics] == ["d"]


def test_a_failing_live_callback_does_not_disturb_the_run():
    def boom(update):
        raise RuntimeError("page gone")
    got = _exchange(lambda w: (w.send_json(PROGRESS, {"done": 1, "total": 2}),
                               w.send_probs(np.ones(1))), boom)
    assert got.problem is None and got.probs.tolist() == [1.0]


def test_a_writer_held_open_is_abandoned_not_waited_for():
    r, w = os.pipe()
    reader = ChannelReader(r)
    reader.start()
    got = reader.finish(timeout=0.2)  # nothing ever closes `w`: the child's stray process
    assert got.problem == "its result channel was still held open after it exited"
    os.close(w)  # the abandoned reader then sees EOF and closes its end
    reader.join(timeout=5)
    assert not reader.is_alive()
