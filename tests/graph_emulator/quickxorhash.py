"""QuickXorHash, the content hash OneDrive reports in file.hashes.quickXorHash.

Definition (Microsoft's C# reference, checked against rclone's test vectors):
byte i of the input is XORed into a 160-bit register rotated left by (11 * i) mod 160
bits; the register is serialised little-endian (20 bytes) and the input length, as a
little-endian 64-bit integer, is XORed into bytes 12..19. The API value is its base64.

Because 11 and 160 are coprime and 11 * 160 = 0 (mod 160), every byte whose index is
congruent mod 160 lands at the same rotation. So the bytes can first be XOR-folded into
one 160-byte block (done here with big-integer XORs, which run in C), and only those
160 bytes need rotating. That makes hashing a 64 MiB upload take a fraction of a second
in pure Python.

Test vector (rclone backend/onedrive/quickxorhash/quickxorhash_test.go):
  base64 input "tbQ=" -> "taAFAAAAAAAAAAAAAgAAAAAAAAA="
and ASCII "hello world" -> "aCgDG9jwBhDc4Q1yawMZAAAAAAA=".
"""

import base64

WIDTH_BITS = 160
BLOCK = 160  # bytes after which the rotation pattern repeats
_MASK160 = (1 << WIDTH_BITS) - 1
_FOLD_BLOCKS = 4096
_ACC_BYTES = BLOCK * _FOLD_BLOCKS  # slices of this size are XORed whole, then folded once


def _fold(chunk: bytes) -> int:
    """XOR of all 160-byte blocks of chunk (zero-padded), as a little-endian integer."""
    blocks = -(-len(chunk) // BLOCK)
    width = 1
    while width < blocks:
        width *= 2
    value = int.from_bytes(chunk, "little")
    bits = width * BLOCK * 8
    while bits > BLOCK * 8:
        bits //= 2
        value = (value & ((1 << bits) - 1)) ^ (value >> bits)
    return value


class QuickXorHash:
    """Streaming QuickXorHash: update() in any chunk sizes, then digest()."""

    def __init__(self) -> None:
        self._acc = 0  # XOR of the input's _ACC_BYTES-sized slices, as an integer
        self._length = 0  # bytes XORed into _acc so far (always a multiple of 160)
        self._pending = b""  # bytes not yet forming a whole 160-byte block

    def update(self, data: bytes) -> None:
        data = self._pending + bytes(data)
        whole = len(data) - len(data) % BLOCK
        view = memoryview(data)
        for start in range(0, whole, _ACC_BYTES):
            self._acc ^= int.from_bytes(view[start:min(start + _ACC_BYTES, whole)], "little")
        self._pending = data[whole:]
        self._length += whole

    def digest(self) -> bytes:
        folded = _fold(self._acc.to_bytes(_ACC_BYTES, "little")) ^ int.from_bytes(
            self._pending, "little")
        block = folded.to_bytes(BLOCK, "little")
        register = 0
        for index, byte in enumerate(block):
            if byte:
                value = byte << ((11 * index) % WIDTH_BITS)
                register ^= (value | (value >> WIDTH_BITS)) & _MASK160
        out = bytearray(register.to_bytes(20, "little"))
        total = self._length + len(self._pending)
        for k, x in enumerate(total.to_bytes(8, "little")):
            out[12 + k] ^= x
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def quickxorhash_b64(data: bytes) -> str:
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.b64digest()


def quickxorhash_file_b64(path: str) -> str:
    hasher = QuickXorHash()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_ACC_BYTES * 4)
            if not chunk:
                break
            hasher.update(chunk)
    return hasher.b64digest()


def reference_quickxorhash(data: bytes) -> bytes:
    """The byte-by-byte definition, kept for the tests to check the fast path against."""
    register = 0
    for i, b in enumerate(data):
        value = b << ((11 * i) % WIDTH_BITS)
        register ^= (value | (value >> WIDTH_BITS)) & _MASK160
    out = bytearray(register.to_bytes(20, "little"))
    for k, x in enumerate(len(data).to_bytes(8, "little")):
        out[12 + k] ^= x
    return bytes(out)
