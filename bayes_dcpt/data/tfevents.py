"""Scalars out of TensorBoard event files, read with the standard library (no TensorFlow, no tensorboard).

An event file (``events.out.tfevents.*``, written by ``torch.utils.tensorboard.SummaryWriter``, tensorboardX,
TensorFlow or the Hugging Face ``TensorBoardCallback``) is a TFRecord stream: each record is a little-endian
``uint64`` length, the masked CRC-32C of those 8 bytes, the payload (an ``Event`` protocol buffer) and the
masked CRC-32C of the payload. The few protobuf fields a scalar needs are decoded here by hand
(``Event.step``, ``Event.wall_time``, ``Event.summary.value[].tag`` with ``simple_value`` or a scalar
``tensor``), so importing runs needs no extra package and a cut-off or corrupt file is one clear error naming
the file and the byte where it breaks, instead of being skipped silently as TensorBoard's own reader does.

Why not ``tensorboard``'s ``EventAccumulator``: it pulls in a web server's dependencies to read a few
numbers, and it drops a truncated tail without saying so.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bayes_dcpt.errors import BayesDCPTError

__all__ = ["EventFileError", "ScalarEvent", "is_event_file", "read_scalars"]

#: Event file names start with this (TensorFlow, torch, tensorboardX).
EVENT_PREFIX = "events.out.tfevents"
_MASK_DELTA = 0xA282EAD8
# TensorProto dtypes that hold a scalar we can read: DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF (not read)
_DT_FLOAT, _DT_DOUBLE = 1, 2


class EventFileError(BayesDCPTError):
    """An event file that cannot be read to its end: truncated, corrupt (bad checksum) or not an event file."""


@dataclass(frozen=True)
class ScalarEvent:
    """One logged scalar: its tag, the step it was logged at, the value and the wall time (seconds)."""

    tag: str
    step: int
    value: float
    wall_time: float


def is_event_file(path: Path) -> bool:
    """Whether ``path`` is named like a TensorBoard event file."""
    return path.is_file() and path.name.startswith(EVENT_PREFIX)


# ------------------------------------------------------------------------------------------------ CRC-32C
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def _crc32c_py(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:  # the C implementation when installed (a dependency of several Google packages); same numbers
    from google_crc32c import value as _crc32c  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _crc32c = _crc32c_py


def masked_crc(data: bytes) -> int:
    """The masked CRC-32C of TFRecord (rotated right by 15 bits plus a constant)."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# --------------------------------------------------------------------------------------- protobuf wire
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("varint runs past the end of the message")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7
        if shift > 70:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of a protobuf message (bytes for length-delimited fields)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
        elif wire == 1:
            val, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            val, i = buf[i : i + n], i + n
        elif wire == 5:
            val, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if i > len(buf):
            raise ValueError("a field runs past the end of the message")
        yield num, wire, val


def _tensor_scalar(buf: bytes) -> float | None:
    """The value of a scalar float/double ``TensorProto`` (new-style TensorBoard scalars), else None."""
    dtype, content, floats, doubles = 0, b"", b"", b""
    for num, wire, val in _fields(buf):
        if num == 1 and wire == 0:
            dtype = int(val)  # type: ignore[arg-type]
        elif num == 4 and wire == 2:
            content = bytes(val)  # type: ignore[arg-type]
        elif num == 5:
            floats += bytes(val)  # type: ignore[arg-type]  (packed, or one fixed32 per field)
        elif num == 6:
            doubles += bytes(val)  # type: ignore[arg-type]
    if dtype == _DT_FLOAT:
        raw = floats or content
        return struct.unpack("<f", raw[:4])[0] if len(raw) >= 4 else None
    if dtype == _DT_DOUBLE:
        raw = doubles or content
        return struct.unpack("<d", raw[:8])[0] if len(raw) >= 8 else None
    return None


def _summary_scalars(buf: bytes) -> Iterator[tuple[str, float]]:
    for num, wire, val in _fields(buf):
        if num != 1 or wire != 2:
            continue
        tag, value = "", None
        for vnum, vwire, v in _fields(bytes(val)):  # type: ignore[arg-type]
            if vnum == 1 and vwire == 2:
                tag = bytes(v).decode("utf-8", errors="replace")  # type: ignore[arg-type]
            elif vnum == 2 and vwire == 5:
                value = struct.unpack("<f", v)[0]  # type: ignore[arg-type]
            elif vnum == 8 and vwire == 2:
                value = _tensor_scalar(bytes(v))  # type: ignore[arg-type]
        if tag and value is not None:
            yield tag, float(value)


def _event_scalars(payload: bytes) -> Iterator[ScalarEvent]:
    step, wall, summaries = 0, 0.0, []
    for num, wire, val in _fields(payload):
        if num == 1 and wire == 1:
            wall = struct.unpack("<d", val)[0]  # type: ignore[arg-type]
        elif num == 2 and wire == 0:
            step = int(val)  # type: ignore[arg-type]
            step = step - (1 << 64) if step >= 1 << 63 else step
        elif num == 5 and wire == 2:
            summaries.append(bytes(val))  # type: ignore[arg-type]
    for s in summaries:
        for tag, value in _summary_scalars(s):
            yield ScalarEvent(tag, step, value, wall)


# ------------------------------------------------------------------------------------------- records
def _records(path: Path, data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(record number, payload)`` of a TFRecord file, checking lengths and checksums."""
    i, n = 0, 0
    while i < len(data):
        n += 1
        if len(data) - i < 12:
            raise EventFileError(f"{path}: truncated event file: record {n} at byte {i} has an incomplete header "
                                 f"({len(data) - i} of 12 bytes); the writer was stopped mid-write")
        header = data[i : i + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8 : i + 12])
        if masked_crc(header) != hcrc:
            raise EventFileError(f"{path}: corrupt event file: record {n} at byte {i} has a bad length checksum")
        start, end = i + 12, i + 12 + length
        if end + 4 > len(data):
            raise EventFileError(f"{path}: truncated event file: record {n} at byte {i} needs {length + 16} bytes, "
                                 f"{len(data) - i} are left; the writer was stopped mid-write")
        payload = data[start:end]
        (dcrc,) = struct.unpack("<I", data[end : end + 4])
        if masked_crc(payload) != dcrc:
            raise EventFileError(f"{path}: corrupt event file: record {n} at byte {i} has a bad data checksum")
        yield n, payload
        i = end + 4


def read_scalars(path: str | Path) -> list[ScalarEvent]:
    """Every scalar logged in one event file, in file order.

    Raises
    ------
    EventFileError
        When the file is missing, truncated, corrupt or not a TFRecord file; the message names the file, the
        record and its byte offset.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise EventFileError(f"{p}: cannot read the event file: {exc.strerror or exc}") from exc
    out: list[ScalarEvent] = []
    for n, payload in _records(p, data):
        try:
            out.extend(_event_scalars(payload))
        except (ValueError, struct.error) as exc:
            raise EventFileError(f"{p}: corrupt event file: record {n} is not an Event message ({exc})") from exc
    return out
