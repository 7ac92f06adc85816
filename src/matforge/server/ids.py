"""Public ids: the store's row ids, enciphered, so ids reveal nothing about other users' rows.

Row ids are sequential and shared by all users: if the API showed them, a user who adds a
project and sees id 57 after id 12 would learn that 44 projects were made meanwhile, and a new
material's id would tell whether anyone had stored that formula before. Ids are therefore
passed through a keyed pseudo-random permutation of 64-bit integers (a 4-round Feistel network
on BLAKE2b) and shown as ``<prefix>_<16 hex digits>``: unique, reversible with the key, and
unordered. The key lives in the store (``server_settings``), so ids are stable across restarts
and servers sharing one database.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets

from matforge.store.database import write_transaction
from matforge.store.repositories import Engine, IntegrityError, settings

#: Prefix of each kind of public id.
PREFIXES = {
    "project": "prj",
    "material": "mat",
    "measurement": "msr",
    "dataset": "dst",
    "job": "job",
    "model": "mdl",
    "reference": "ref",
    "campaign": "cmp",
    "suggestion": "sug",
    "audit": "aud",
    "structure": "str",
    # a page cursor (`next`/`after`): a row position, made only by the server
    "cursor": "cur",
}
#: Largest row id of each kind (32-bit INTEGER keys, else 64-bit BIGINT): a decoded id past
#: it cannot exist, and PostgreSQL would refuse to compare with it.
MAX_ROW_ID = {
    "project": 2**31 - 1,
    "dataset": 2**31 - 1,
    "model": 2**31 - 1,
    "reference": 2**31 - 1,
    "campaign": 2**31 - 1,
}
_ROUNDS = 4
_MASK32 = 0xFFFFFFFF
_PATTERN = re.compile(r"^([a-z]{3})_([0-9a-f]{16})$")
KEY_SETTING = "id_key"


class IdCodec:
    """Encode row ids (``int``) as public ids (``str``) and back, one key per kind."""

    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the id key must be at least 16 bytes")
        self._keys = {
            kind: hashlib.blake2b(kind.encode(), key=key[:64], digest_size=32).digest()
            for kind in PREFIXES
        }
        # pages show the same ids again and again; 20 µs each adds up to milliseconds a page
        self.encode = functools.lru_cache(maxsize=1 << 18)(self.encode)

    def _round(self, kind: str, i: int, half: int) -> int:
        digest = hashlib.blake2b(
            half.to_bytes(4, "big"), key=self._keys[kind], digest_size=4, person=bytes([i]) * 16
        ).digest()
        return int.from_bytes(digest, "big")

    def encode(self, kind: str, row_id: int) -> str:
        """The public id of row ``row_id`` (0 <= row_id < 2**64) of ``kind``."""
        left, right = (row_id >> 32) & _MASK32, row_id & _MASK32
        for i in range(_ROUNDS):
            left, right = right, left ^ self._round(kind, i, right)
        return f"{PREFIXES[kind]}_{(left << 32 | right):016x}"

    def of_text(self, kind: str, text: str) -> str:
        """A public id derived from ``text`` itself (same text, same id; nothing else in it)."""
        digest = hashlib.blake2b(text.encode("utf-8"), key=self._keys[kind], digest_size=8)
        return f"{PREFIXES[kind]}_{digest.hexdigest()}"

    def decode(self, kind: str, public_id: str) -> int | None:
        """The row id behind ``public_id``, or None when it is not an id of ``kind`` at all."""
        match = _PATTERN.match(public_id) if isinstance(public_id, str) else None
        if match is None or match.group(1) != PREFIXES[kind]:
            return None
        value = int(match.group(2), 16)
        left, right = value >> 32, value & _MASK32
        for i in reversed(range(_ROUNDS)):
            left, right = right ^ self._round(kind, i, left), left
        row_id = left << 32 | right
        return row_id if row_id <= MAX_ROW_ID.get(kind, 2**63 - 1) else None


def load_codec(engine: Engine) -> IdCodec:
    """The codec of the store behind ``engine``, creating its key on first use."""
    with engine.connect() as conn:
        value = settings.get(conn, KEY_SETTING)
    if value is None:
        try:
            with write_transaction(engine) as conn:
                value = settings.get(conn, KEY_SETTING)
                if value is None:
                    value = secrets.token_hex(32)
                    settings.insert(conn, KEY_SETTING, value)
        except IntegrityError:  # another server created it at the same moment
            return load_codec(engine)
    return IdCodec(bytes.fromhex(value))
