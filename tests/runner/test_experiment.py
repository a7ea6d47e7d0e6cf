"""The runner side of experiments: the derived bundle (a held-out slice of train as `test`,
nothing of the real test split), the comparison with the teacher, and the file frames a
hostile experiment might abuse."""

import json
import os

import numpy as np
import pytest

from runner.experiment import derive_bundle, split_train, teacher_eval
from runner.method.channel import FILE, ChannelError, ChannelReader, ChannelWriter, parse_file


def test_the_split_is_the_seeds_and_covers_train_once():
    kept, held = split_train(1000, seed=7)
    assert len(held) == 200 and len(kept) == 800
    assert sorted([*kept, *held]) == list(range(1000))
    _, again_held = split_train(1000, seed=7)
    assert (again_held == held).all() and not (split_train(1000, seed=8)[1] == held).all()


def test_the_derived_bundle_holds_train_only(tmp_path):
    src = tmp_path / "bundle"
    (src / "features").mkdir(parents=True)
    n = 10
    (src / "task.json").write_text(json.dumps({"name": "t", "kind": "classify",
                                               "description": "d", "label_names": ["a", "b"],
                                               "sizes": {"train": n, "test": 5}}))
    (src / "inputs_train.jsonl").write_text("".join(json.dumps({"text": f"tr{i}"}) + "\n"
                                                    for i in range(n)))
    (src / "texts_train.json").write_text(json.dumps([f"tr{i}" for i in range(n)]))
    (src / "inputs_test.jsonl").write_text('{"text": "SECRET TEST"}\n' * 5)
    (src / "texts_test.json").write_text(json.dumps(["SECRET TEST"] * 5))
    for which in ("weak", "strong"):
        np.save(src / "features" / f"{which}_train.npy", np.arange(n * 2.0).reshape(n, 2))
        np.save(src / "features" / f"{which}_test.npy", np.full((5, 2), -1.0))
    np.save(src / "weak_soft_labels.npy", np.linspace(0, 1, n))
    (src / "models.json").write_text("{}")
    kept, held = split_train(n, seed=1)
    held_labels = derive_bundle(src, tmp_path / "exp", kept, held)
    dest = tmp_path / "exp"
    everything = b"".join(p.read_bytes() for p in dest.rglob("*") if p.is_file())
    assert b"SECRET TEST" not in everything
    assert not (np.load(dest / "features" / "strong_test.npy") < 0).any()
    assert json.loads((dest / "task.json").read_text())["sizes"] == {"train": 8, "test": 2}
    assert json.loads((dest / "texts_test.json").read_text()) == [f"tr{i}" for i in held]
    assert np.allclose(held_labels, np.linspace(0, 1, n)[held])
    assert np.allclose(np.load(dest / "weak_soft_labels.npy"), np.linspace(0, 1, n)[kept])


def test_teacher_eval_measures_agreement_and_calibration():
    teacher = np.array([0.9, 0.8, 0.2, 0.1])
    same = teacher_eval(teacher.copy(), teacher)
    assert same["teacher_agreement"] == 1.0 and same["teacher_calibration_error"] < 1e-9
    flipped = teacher_eval(1 - teacher, teacher)
    assert flipped["teacher_agreement"] == 0.0
    assert flipped["teacher_cross_entropy"] > same["teacher_cross_entropy"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.png", ".hidden", "", "x" * 101])
def test_a_file_frame_with_a_path_for_a_name_is_the_methods_error(name):
    encoded = name.encode()
    with pytest.raises(ChannelError):
        parse_file(len(encoded).to_bytes(2, "big") + encoded + b"data")


def test_files_come_back_over_the_channel_capped_in_number():
    read_fd, write_fd = os.pipe()
    reader = ChannelReader(read_fd)
    reader.start()
    writer = ChannelWriter(write_fd)
    for i in range(20):
        writer.send_file(f"plot{i:02d}.png", b"\x89PNG" + bytes([i]))
    writer.send(FILE, b"\x00\x03")  # a name length past the end: malformed
    os.close(write_fd)
    got = reader.finish()
    assert len(got.files) == 16 and got.files["plot00.png"] == b"\x89PNG\x00"
    assert got.problem is not None
