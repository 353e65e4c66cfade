"""Search every byte of an image (`docker save`: all layers, config and history) for strings."""

from __future__ import annotations

import subprocess


def strings_in_image(image: str, needles: list[str], chunk: int = 8 << 20) -> dict[str, bool]:
    """Which of `needles` occur anywhere in the saved image, streamed (no copy on disk).

    Layers are saved as plain tar streams, so a file's contents appear verbatim; callers should
    include a string known to be in the image as a positive control.
    """
    wanted = {needle: needle.encode() for needle in needles}
    found = dict.fromkeys(needles, False)
    overlap = max(len(b) for b in wanted.values()) - 1
    process = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    assert process.stdout is not None
    tail = b""
    try:
        while block := process.stdout.read(chunk):
            window = tail + block
            for needle, raw in wanted.items():
                if not found[needle] and raw in window:
                    found[needle] = True
            tail = window[-overlap:] if overlap else b""
    finally:
        process.stdout.close()
        assert process.wait(timeout=120) == 0, f"docker save {image} failed"
    return found
