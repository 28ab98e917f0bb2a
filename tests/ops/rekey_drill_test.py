#!/usr/bin/env python3
"""The key rotation drill of docs/operations.md, on a live deployment of 5,000 files run
through the systemd-style harness (tests/ops/unit_harness.py):

  1. the service runs with the old key as its credential, and files are written;
  2. stop the service (ExecStop);
  3. cadcanfs rekey --key-file old --new-key-file new;
  4. swap the credential to the new key;
  5. start the service again.

Asserts that the new key serves every file, that the old key no longer opens the vault
(fsck and the service both refuse it with exit 5), and that the work grows with the
number of files, not their bytes: every ciphertext file keeps its blocks byte for byte,
only its 192-byte header changes, and the bytes rekey writes (wchar of /proc/self/io,
which includes reaped children) stay within the headers' size.

usage: rekey_drill_test.py CADCANFS UNIT_FILE
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from unit_harness import Checks, Unit, mounted  # noqa: E402

FILES = 5000
PATIENTS = 50
HEADER = 192  # docs/vault-format.md: a ciphertext file is a 192-byte header + blocks
VAULT_METADATA = ("cadcanfs.conf", "cadcanfs.dirid", "cadcanfs.lock")


def ciphertext_files(vault):
    """{path: (header digest, body digest, size)} for every encrypted file."""
    result = {}
    for root, _, names in os.walk(vault):
        for name in names:
            if name in VAULT_METADATA or name.endswith(".name"):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                header = f.read(HEADER)
                body = hashlib.sha256(f.read()).digest()
            result[path] = (hashlib.sha256(header).digest(), body, os.path.getsize(path))
    return result


def written_bytes():
    with open("/proc/self/io", encoding="ascii") as io:
        return int(next(line for line in io if line.startswith("wchar:")).split()[1])


def main():
    binary, unit_file = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    # tmpfs when there is one: rekey fsyncs twice per file for crash safety, which this
    # drill does not test, and on a busy disk that alone takes longer than the drill.
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="cadcanfs-rekey-drill-", dir=scratch)
    try:
        return run(binary, unit_file, work)
    finally:
        subprocess.run(["umount", "-l", os.path.join(work, "mnt")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def cadcanfs(binary, *args):
    return subprocess.run([binary] + list(args), capture_output=True).returncode


def run(binary, unit_file, work):
    t = Checks()
    os.chdir(work)
    rng = random.Random(11)
    for i in range(FILES - 1):
        folder = "src/Patient %02d" % (i % PATIENTS)
        os.makedirs(folder, exist_ok=True)
        with open("%s/scan %04d.stl" % (folder, i), "wb") as f:
            f.write(rng.randbytes(rng.randrange(2048, 6144)))
    os.mkdir("mnt")
    os.makedirs("keys")
    t.check("keygen old", 0, cadcanfs(binary, "keygen", "keys/old.key"))
    t.check("init", 0, cadcanfs(binary, "init", "vault", "--key-file", "keys/old.key"))
    t.check("encrypt", 0, cadcanfs(binary, "encrypt", "vault", "src/", "--key-file", "keys/old.key"))
    with open("office.conf", "w") as conf:
        conf.write("vault = %s/vault\nmountpoint = %s/mnt\n" % (work, work))
    os.environ.pop("CREDENTIALS_DIRECTORY", None)
    shutil.copyfile("keys/old.key", "keys/office.key")  # /etc/cadcanfs/keys/office.key

    # 1. Live: the service serves the vault and a file is written through it.
    live = os.urandom(50000)
    unit = Unit(unit_file, "office", binary, work + "/office.conf", "keys/office.key", work)
    ready, _ = unit.start()
    t.check("the service starts with the old key", True, ready)
    with open("mnt/Patient 00/written live.bin", "wb") as f:
        f.write(live)
    # 2. Stop. 3. Rekey (refused while mounted: checked first).
    t.check("rekey refuses while the service runs (exit 13)", 13,
            cadcanfs(binary, "rekey", "vault", "--key-file", "keys/old.key",
                     "--new-key-file", "keys/unused.key"))
    t.check("stop: clean exit", 0, unit.stop())
    t.check("stop: unmounted", False, mounted("mnt"))
    t.check("keygen new", 0, cadcanfs(binary, "keygen", "keys/new.key"))
    before = ciphertext_files("vault")
    t.check("the vault holds every file", FILES, len(before))
    io_before = written_bytes()
    t.check("rekey", 0, cadcanfs(binary, "rekey", "vault", "--key-file", "keys/old.key",
                                 "--new-key-file", "keys/new.key"))
    rekey_wrote = written_bytes() - io_before
    after = ciphertext_files("vault")
    t.check("rekey keeps every file", sorted(before), sorted(after))
    t.check("every header is rewritten",
            0, sum(1 for p in before if p in after and after[p][0] == before[p][0]))
    t.check("no block changes (content is not re-encrypted)",
            0, sum(1 for p in before if p in after and after[p][1:] != before[p][1:]))
    total = sum(size for _, _, size in before.values())
    headers = HEADER * len(before)
    # Rekey rewrites key slots inside each header; the config and its journal add a
    # few KiB, which 64 KiB of slack covers.
    t.check("rekey writes at most one header per file, not the %d bytes of content" % total,
            True, 0 < rekey_wrote <= headers + 64 * 1024)
    print("rekey wrote %d bytes for %d files of %d bytes" % (rekey_wrote, len(before), total))

    # 4. Swap the credential. 5. Start again.
    shutil.copyfile("keys/new.key", "keys/office.key")

    def probe():
        with open("mnt/Patient 00/written live.bin", "rb") as f:
            live_ok = f.read() == live
        last = "Patient %02d/scan %04d.stl" % ((FILES - 2) % PATIENTS, FILES - 2)
        with open("mnt/" + last, "rb") as f, open("src/" + last, "rb") as g:
            return live_ok and f.read() == g.read()

    unit = Unit(unit_file, "office", binary, work + "/office.conf", "keys/office.key", work)
    ready, readable = unit.start(on_ready=probe)
    t.check("the service starts with the new key", True, ready)
    t.check("files written before and during the live phase read back", True, readable)
    t.check("stop after the drill", 0, unit.stop())
    t.check("fsck with the new key: clean", 0, cadcanfs(binary, "fsck", "vault", "--key-file",
                                                        "keys/new.key"))

    # The old key no longer opens the vault, offline or as the service's credential.
    t.check("fsck with the old key: wrong key (5)", 5,
            cadcanfs(binary, "fsck", "vault", "--key-file", "keys/old.key"))
    unit = Unit(unit_file, "office", binary, work + "/office.conf", "keys/old.key", work)
    ready, _ = unit.start()
    t.check("the service refuses the old credential: no READY=1", False, ready)
    t.check("the service refuses the old credential: exit 5", 5, unit.wait_exit())
    return t.report("rekey drill")


if __name__ == "__main__":
    sys.exit(main())
