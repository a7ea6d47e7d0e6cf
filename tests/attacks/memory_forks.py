import os
import time

TARGET = None  # megabytes each of three processes holds (each under RLIMIT_AS alone)


def run(ctx):
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            block = bytearray(TARGET * 1024 * 1024)
            for i in range(0, len(block), 4096):  # touch every page: resident, not reserved
                block[i] = 1
            time.sleep(8)  # long enough that all three hold their pages at once
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return [0.5] * ctx.task.sizes["test"]
