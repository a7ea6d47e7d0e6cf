import sys

TARGET = None  # megabytes to write


def run(ctx):
    block = "y" * (1 << 20)
    for _ in range(TARGET):
        sys.stdout.write(block)
    sys.stdout.write("\nFLOOD DONE\n")
    raise RuntimeError("flooded stdout, then failed on purpose")
