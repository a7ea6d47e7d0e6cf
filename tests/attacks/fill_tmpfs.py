import os

TARGET = None  # (folder, megabytes) to write


def run(ctx):
    folder, megabytes = TARGET
    block = os.urandom(1 << 20)
    with open(os.path.join(folder, "fill.bin"), "wb") as fh:
        for _ in range(megabytes):
            fh.write(block)
            fh.flush()
    print(f"wrote {megabytes} MB to {folder}")
    return [0.5] * ctx.task.sizes["test"]
