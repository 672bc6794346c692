"""The emulated root's build is safe when two processes ask at once (two
pytest-xdist workers, two shells): whoever waits for the lock reuses the root
the other built instead of building it again."""
import fcntl
import json
import threading

from export import verify_root


def test_a_builder_that_waits_for_the_lock_reuses_the_root_built_meanwhile(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(verify_root, "missing_tools", lambda: [])
    monkeypatch.setattr(verify_root.os, "geteuid", lambda: 0)

    def no_second_build(argv, what, log):
        raise AssertionError(f"the waiting builder built again: {what}")

    monkeypatch.setattr(verify_root, "_run", no_second_build)
    reached_lock, real_flock = threading.Event(), fcntl.flock

    def flock(file, operation):
        reached_lock.set()  # past the unlocked fast path: this caller takes the lock
        return real_flock(file, operation)

    monkeypatch.setattr(verify_root.fcntl, "flock", flock)
    results = []

    def second_builder():
        try:
            results.append(verify_root.build_root(log=lambda line: None))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    with open(tmp_path / f".{verify_root.ROOT_NAME}.lock", "w") as first:
        real_flock(first, fcntl.LOCK_EX)  # the first builder, mid-build
        thread = threading.Thread(target=second_builder)
        thread.start()
        assert reached_lock.wait(60)
        stamp = tmp_path / verify_root.ROOT_NAME / "opt" / "zoo" / "stamp.json"
        stamp.parent.mkdir(parents=True)
        stamp.write_text(json.dumps(verify_root.wanted_stamp()))  # the first one finishes
        real_flock(first, fcntl.LOCK_UN)
    thread.join(60)
    assert results == [tmp_path / verify_root.ROOT_NAME]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{verify_root.ROOT_NAME}.lock",
                                                          verify_root.ROOT_NAME]
