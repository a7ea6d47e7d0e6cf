import os

TARGET = None  # a host file the runner must never load on the method's behalf


def run(ctx):
    # The old runner read out/metrics.jsonl, out/error.json and out/probs.npy from a folder the
    # method could write: a FIFO there blocked the only worker, a symlink made it load a host file.
    for folder in (os.getcwd(), "/tmp/out"):
        os.makedirs(folder, exist_ok=True)
        os.mkfifo(os.path.join(folder, "metrics.jsonl"))
        os.mkfifo(os.path.join(folder, "error.json"))
        os.symlink(TARGET, os.path.join(folder, "probs.npy"))
    ctx.log("made", 1.0)
    return None
