"""A module a crafted file names so that loading it would run code: importing this
module, or calling ``run``, creates the directory named by ``ZOO_HOSTILE_MARKER``.
The hostile-input tests assert that the marker never appears."""
import os


def run(*args, **kwargs):
    """What a crafted config asks a loader to call."""
    os.makedirs(os.environ.get("ZOO_HOSTILE_MARKER", "/tmp/zoo-hostile-marker"), exist_ok=True)


run()  # importing is already running code from the file
