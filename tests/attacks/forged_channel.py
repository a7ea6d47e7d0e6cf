import json
import os
import struct

TARGET = None  # which forgery: "huge", "list_error", "pickle", "garbage", "big_int"


def _channel_fd():
    # A hostile method reads its run description to find the parent's pipe.
    with open("/w2s/method/run.json") as fh:
        return json.load(fh)["channel_fd"]


def _frame(kind, payload, claimed=None):
    return struct.pack(">cI", kind, len(payload) if claimed is None else claimed) + payload


def run(ctx):
    fd = _channel_fd()
    if TARGET == "huge":  # an error report claiming 2 GB, then streaming
        os.write(fd, _frame(b"E", b"", claimed=2**31))
        block = b"x" * (1 << 20)
        for _ in range(4096):
            os.write(fd, block)
    elif TARGET == "list_error":
        os.write(fd, _frame(b"E", json.dumps(["not", "an", "object"]).encode()))
        os._exit(1)
    elif TARGET == "pickle":
        import pickle
        os.write(fd, _frame(b"P", pickle.dumps([0.5] * ctx.task.sizes["test"])))
        os._exit(0)
    elif TARGET == "garbage":
        os.write(fd, b"\x00\x01garbage" * 1000)
        os._exit(0)
    elif TARGET == "big_int":  # a ctx.log record whose value is a 4,000-digit integer
        record = b'{"name": "loss", "value": ' + b"9" * 4000 + b"}"
        os.write(fd, _frame(b"M", record))
        return [0.5] * ctx.task.sizes["test"]
    raise RuntimeError("unreachable")
