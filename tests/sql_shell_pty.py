#!/usr/bin/env python3
"""Drives `trawl sql SNAPSHOT` on a pseudo-terminal, as a person would:
types each argument as a line, waits for the shell, prints what the
terminal showed (ANSI sequences removed). Used by tests/cli.rs."""
import os
import pty
import re
import select
import sys
import time


def main():
    trawl, snap, lines = sys.argv[1], sys.argv[2], sys.argv[3:]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["HOME"] = os.environ.get("TRAWL_TEST_HOME", "/tmp")
        os.execv(trawl, [trawl, "sql", snap])
    out = bytearray()

    def drain(seconds):
        end = time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    out.extend(os.read(fd, 65536))
                except OSError:
                    return

    drain(3.0)
    for line in lines:
        os.write(fd, (line + "\r").encode())
        drain(1.5)
    os.waitpid(pid, 0)
    sys.stdout.write(re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.decode(errors="replace")))


if __name__ == "__main__":
    main()
