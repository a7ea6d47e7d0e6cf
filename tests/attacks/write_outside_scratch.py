TARGET = None  # a file in the runner's own source tree


def run(ctx):
    (ctx.scratch / "fine.txt").write_text("scratch is writable")
    with open(TARGET, "w") as fh:
        fh.write("import os; os.system('evil')\n")
    return [0.5] * ctx.task.sizes["test"]
