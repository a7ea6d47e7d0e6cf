TARGET = None  # the study's DuckDB file


def run(ctx):
    with open(TARGET, "rb") as fh:
        fh.read(16)
    return [0.5] * ctx.task.sizes["test"]
