"""API key files: one SHA-256 hex digest a line (``#`` notes, blank lines), read whole."""

from __future__ import annotations

import os
import re

__all__ = ["MAX_KEY_FILE_BYTES", "Stamp", "read_key_file", "stamp_of"]

Stamp = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino): a change means "read it again"
MAX_KEY_FILE_BYTES = 16 * 1024 * 1024  # about 250,000 digests
_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def stamp_of(path: str) -> Stamp | None:
    """The file's stamp now (following links, as a mounted Secret's are), None if unreadable."""
    try:
        return _stamp(os.stat(path))
    except OSError:
        return None


def read_key_file(path: str) -> tuple[frozenset[str], Stamp]:
    """The file's digests (lower case) and its stamp when read; a ValueError naming the file
    (and the line, never its text: it may be a key pasted by mistake) if it cannot be used."""
    try:
        with open(path, "rb") as file:
            stamp = _stamp(os.fstat(file.fileno()))
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{path} is over {MAX_KEY_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    digests: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not _DIGEST.match(entry):
            raise ValueError(f"{path} line {number}: not a SHA-256 hex digest (64 hex characters)")
        digests.add(entry.lower())
    return frozenset(digests), stamp
