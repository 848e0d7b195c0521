"""Bytes <-> the schema's types: one validation at load, with errors a user can act on.

Every damaged file gives one InputError naming the file (and line), the key, and what was
expected; never a traceback. The fast path decodes a current-version line straight into the
types (msgspec); anything else (an older version, NaN or Infinity literals, damage) goes through
json, the version check, `upgrade_to_current`, and the same types.
"""

from __future__ import annotations

import json
import re
from typing import Literal, Union

import msgspec

from dsabench.errors import InputError
from dsabench.store.schema import (INT_RANGE, MAX_DEPTH, RECORD_VERSIONS_AS_IS, SCHEMA_VERSION, Manifest, Record,
                                   numpy_scalar, upgrade_to_current)

_RECORD = msgspec.json.Decoder(Record)
_MAX = 300  # characters of a message taken from a file (a 100k-character key stays one short line)


def _clip(text: str) -> str:
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= _MAX else text[:_MAX] + "..."


def explain(exc: msgspec.ValidationError) -> str:
    """msgspec's 'Expected `int`, got `bool` - at `$.a.b`' as "key 'a.b': expected int, got bool"."""
    msg = str(exc)
    detail, _, at = msg.partition(" - at `$")
    path = at.rstrip("`").lstrip(".")
    m = re.fullmatch(r"Object (missing required|contains unknown) field `(.*)`", detail, re.S)
    if m:
        key = f"{path}.{m.group(2)}" if path else m.group(2)
        if m.group(1).startswith("missing"):
            return f"missing key '{_clip(key)}'"
        return f"unknown key '{_clip(key)}'; expected only the keys of schema version {SCHEMA_VERSION}"
    m = re.fullmatch(r"Expected `(.*)`, got `(.*)`", detail, re.S)
    if m and m.group(2) in ("object", "array") and path.count("[") >= MAX_DEPTH:
        detail = f"nested deeper than {MAX_DEPTH} levels; expected a value of at most {MAX_DEPTH} levels of objects and arrays"
    elif m:
        detail = f"expected {m.group(1)}, got {m.group(2)}"
    elif detail == "Number out of range":
        detail = "number out of range; expected a finite number"
    elif (b := re.fullmatch(r"Expected `(int|float)` ([<>]=) (\S+)", detail)) and b[3] not in map(str, INT_RANGE):
        detail = f"out of range; expected {'an integer' if b[1] == 'int' else 'a number'} {b[2]} {b[3]}"  # a field's own bound
    elif re.fullmatch(r"Expected `int` [<>]= -?\d+|Integer value out of range", detail):
        detail = f"integer out of range; expected an integer from {INT_RANGE[0]} to {INT_RANGE[1]} (64 bits)"
    return f"key '{_clip(path)}': {_clip(detail)}" if path else _clip(detail)


def _typed_problem(raw: bytes, type_: type) -> str | None:
    """What the schema's own decoder says of `raw` (it stops at the schema's bounds, with the key),
    or None when it finds nothing to say."""
    try:
        msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        return explain(exc)
    except (msgspec.DecodeError, RecursionError):
        return None
    return None


def _parse(raw: Union[bytes, dict], where: str, what: str, type_: type) -> dict:
    if isinstance(raw, dict):
        doc = raw
    else:
        try:
            doc = json.loads(raw)
        except UnicodeDecodeError as exc:
            raise InputError(f"{where}: not UTF-8 text (byte {exc.start}); expected {what}") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({_clip(str(exc))}); expected {what}") from None
        except RecursionError:
            said = _typed_problem(raw, type_) or f"nested deeper than {MAX_DEPTH} levels"
            raise InputError(f"{where}: {said}; expected {what}") from None
        except ValueError:  # an integer of more digits than Python converts (4300)
            said = _typed_problem(raw, type_) or "an integer of thousands of digits"
            raise InputError(f"{where}: {said}; expected {what}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: is a JSON {type(doc).__name__}; expected {what}")
    version = doc.get("schema")
    if type(version) is not int or version < 1:
        raise InputError(
            f"{where}: key 'schema' is {_clip(repr(version))}; expected an integer schema version "
            f"from 1 to {SCHEMA_VERSION}"
        )
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{where}: key 'schema' is {version}; this dsabench reads versions up to {SCHEMA_VERSION} (upgrade dsabench)"
        )
    return doc


def convert(doc, type_: type, where: str):
    """Plain JSON data as one of the schema's types; an InputError saying where it does not fit."""
    try:
        return msgspec.convert(doc, type_)
    except msgspec.ValidationError as exc:
        raise InputError(f"{where}: {explain(exc)}") from None


def _convert(doc: dict, kind: Literal["manifest", "record"], where: str):
    return convert(upgrade_to_current(dict(doc), kind), Manifest if kind == "manifest" else Record, where)


def decode_manifest(raw: Union[bytes, dict], where: str) -> Manifest:
    return _convert(_parse(raw, where, "a run manifest (a JSON object)", Manifest), "manifest", where)


def decode_record(raw: Union[bytes, dict], where: str) -> Record:
    if isinstance(raw, bytes):
        try:
            record = _RECORD.decode(raw)
            if record.schema == SCHEMA_VERSION:
                return record
            if record.schema in RECORD_VERSIONS_AS_IS:
                return msgspec.structs.replace(record, schema=SCHEMA_VERSION)
        except (msgspec.DecodeError, RecursionError):
            pass  # the slow path below says what is wrong, or reads NaN/Infinity, or upgrades
    return _convert(_parse(raw, where, "a record (a JSON object)", Record), "record", where)


def builtins(obj: Union[Manifest, Record]) -> dict:
    """The writer's object as Python data for validation (floats kept as they are, NaN included)."""
    return msgspec.to_builtins(obj, enc_hook=numpy_scalar)


def encode(obj: Union[Manifest, Record]) -> bytes:
    """One line of sorted-key JSON (NaN and Infinity written as json writes them, and read back)."""
    return json.dumps(builtins(obj), sort_keys=True, allow_nan=True).encode()
