"""Puts one file into the page cache in a known state, for the cold-start run's warm cases.

    python3 page_cache.py random FILE      drop FILE's cached pages, then read every 4 KiB page
                                           with the kernel's read-ahead off (16 threads): the
                                           cache then holds it in 4 KiB pages, as a process
                                           that used it at random (LMDB, the build) leaves it
    python3 page_cache.py sequential FILE  drop FILE's cached pages, then read it through in
                                           order: the cache then holds it in large folios, as a
                                           copy or `cat` leaves it

A fresh process maps a file's pages much faster from large folios than from 4 KiB pages, so
the two states give different first queries. Dropping one file's clean pages
(POSIX_FADV_DONTNEED) needs no privileges. Prints the seconds taken.
"""

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

PAGE = 4096
THREADS = 16


def read_random(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        pages = (size + PAGE - 1) // PAGE

        def part(t):
            # Thread t reads pages t, t + THREADS, ...: all in flight at once, each alone.
            for p in range(t, pages, THREADS):
                os.pread(fd, PAGE, p * PAGE)

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(part, range(THREADS)))
    finally:
        os.close(fd)


def read_sequential(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while os.read(fd, 16 << 20):
            pass
    finally:
        os.close(fd)


def drop(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("random", "sequential"):
        sys.exit(__doc__)
    mode, path = sys.argv[1], sys.argv[2]
    start = time.time()
    drop(path)
    (read_random if mode == "random" else read_sequential)(path)
    print(f"{time.time() - start:.2f}")


if __name__ == "__main__":
    main()
