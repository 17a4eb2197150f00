import threading

from ragfleet.index.rwlock import RWLock


def test_readers_overlap_and_writer_is_exclusive() -> None:
    lock = RWLock()
    barrier = threading.Barrier(3, timeout=5)
    inside: list[str] = []

    def reader() -> None:
        with lock.read():
            barrier.wait()  # three readers inside at once, or this times out
            inside.append("r")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside == ["r"] * 3

    state = {"writers": 0, "max": 0, "readers_during_write": 0}
    guard = threading.Lock()

    def writer() -> None:
        for _ in range(200):
            with lock.write():
                with guard:
                    state["writers"] += 1
                    state["max"] = max(state["max"], state["writers"])
                with guard:
                    state["writers"] -= 1

    def reader2() -> None:
        for _ in range(200):
            with lock.read(), guard:
                state["readers_during_write"] += state["writers"]

    ts = [threading.Thread(target=f) for f in (writer, writer, reader2, reader2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert state["max"] == 1 and state["readers_during_write"] == 0
