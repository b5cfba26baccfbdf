"""HighwayHash-64, the checksum nats-server writes beside each stream's ``meta.inf``.

In: a 32-byte key and bytes. Out: the 64-bit hash (:func:`hash64`) and the hex
digest nats-server stores in ``meta.sum`` (:func:`meta_sum`: the key is the
SHA-256 of the stream's directory name, the digest the hash's 8 bytes, little
endian, as the Go digest nats-server uses appends them). Written from the algorithm's
description (Alakuijala, Cox, Wassenberg, "Fast keyed hash/pseudo-random
function using SIMD multiply and permute", 2016; the portable reference);
tested against checksums nats-server itself wrote. Pure Python: meta files are
a few hundred bytes.
"""

from __future__ import annotations

import hashlib
import struct

M = (1 << 64) - 1
_MUL0 = (0xDBE6D5D5FE4CCE2F, 0xA4093822299F31D0, 0x13198A2E03707344, 0x243F6A8885A308D3)
_MUL1 = (0x3BD39E10CB0EF593, 0xC0ACF169B5F18A8C, 0xBE5466CF34E90C6C, 0x452821E638D01377)


def _swap32(x: int) -> int:
    return ((x >> 32) | (x << 32)) & M


class _State:
    def __init__(self, key: bytes) -> None:
        k = struct.unpack("<4Q", key)
        self.mul0 = list(_MUL0)
        self.mul1 = list(_MUL1)
        self.v0 = [self.mul0[i] ^ k[i] for i in range(4)]
        self.v1 = [self.mul1[i] ^ _swap32(k[i]) for i in range(4)]

    def update(self, lanes: tuple[int, ...] | list[int]) -> None:
        v0, v1, mul0, mul1 = self.v0, self.v1, self.mul0, self.mul1
        for i in range(4):
            v1[i] = (v1[i] + mul0[i] + lanes[i]) & M
            mul0[i] ^= ((v1[i] & 0xFFFFFFFF) * (v0[i] >> 32)) & M
            v0[i] = (v0[i] + mul1[i]) & M
            mul1[i] ^= ((v0[i] & 0xFFFFFFFF) * (v1[i] >> 32)) & M
        v0[1], v0[0] = _zipper_add(v1[1], v1[0], v0[1], v0[0])
        v0[3], v0[2] = _zipper_add(v1[3], v1[2], v0[3], v0[2])
        v1[1], v1[0] = _zipper_add(v0[1], v0[0], v1[1], v1[0])
        v1[3], v1[2] = _zipper_add(v0[3], v0[2], v1[3], v1[2])

    def remainder(self, tail: bytes) -> None:
        n = len(tail)
        mod4 = n & 3
        body = n & ~3
        for i in range(4):
            self.v0[i] = (self.v0[i] + ((n << 32) + n)) & M
        self.v1 = [_rotate32(x, n) for x in self.v1]
        packet = bytearray(32)
        packet[:body] = tail[:body]
        rest = tail[body:]
        if n & 16:
            for i in range(4):
                packet[28 + i] = tail[body + i + mod4 - 4]
        elif mod4:
            packet[16] = rest[0]
            packet[17] = rest[mod4 >> 1]
            packet[18] = rest[mod4 - 1]
        self.update(struct.unpack("<4Q", packet))

    def finalize64(self) -> int:
        for _ in range(4):
            v = self.v0
            self.update([_swap32(v[2]), _swap32(v[3]), _swap32(v[0]), _swap32(v[1])])
        return (self.v0[0] + self.v1[0] + self.mul0[0] + self.mul1[0]) & M


def _zipper_add(v1: int, v0: int, add1: int, add0: int) -> tuple[int, int]:
    add0 += (
        (((v0 & 0xFF000000) | (v1 & 0xFF00000000)) >> 24)
        | (((v0 & 0xFF0000000000) | (v1 & 0xFF000000000000)) >> 16)
        | (v0 & 0xFF0000)
        | ((v0 & 0xFF00) << 32)
        | ((v1 & 0xFF00000000000000) >> 8)
        | ((v0 << 56) & M)
    )
    add1 += (
        (((v1 & 0xFF000000) | (v0 & 0xFF00000000)) >> 24)
        | (v1 & 0xFF0000)
        | ((v1 & 0xFF0000000000) >> 16)
        | ((v1 & 0xFF00) << 24)
        | ((v0 & 0xFF000000000000) >> 8)
        | ((v1 & 0xFF) << 48)
        | (v0 & 0xFF00000000000000)
    )
    return add1 & M, add0 & M


def _rotate32(x: int, count: int) -> int:
    count &= 31
    if not count:
        return x
    lo, hi = x & 0xFFFFFFFF, x >> 32
    lo = ((lo << count) | (lo >> (32 - count))) & 0xFFFFFFFF
    hi = ((hi << count) | (hi >> (32 - count))) & 0xFFFFFFFF
    return (hi << 32) | lo


def hash64(key: bytes, data: bytes) -> int:
    """HighwayHash-64 of ``data`` under the 32-byte ``key``."""
    if len(key) != 32:
        raise ValueError("a HighwayHash key has 32 bytes")
    state = _State(key)
    full = len(data) & ~31
    for off in range(0, full, 32):
        state.update(struct.unpack_from("<4Q", data, off))
    if len(data) & 31:
        state.remainder(data[full:])
    return state.finalize64()


def meta_sum(stream_dir_name: str, meta: bytes) -> str:
    """What nats-server writes to ``meta.sum`` for a stream directory's ``meta.inf``."""
    key = hashlib.sha256(stream_dir_name.encode()).digest()
    return struct.pack("<Q", hash64(key, meta)).hex()
