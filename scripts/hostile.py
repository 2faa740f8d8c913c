#!/usr/bin/env python3
"""The hostile re-test of RELIABILITY.md: every command aimed, as an adversarial user would, at
device nodes, FIFOs, symbolic links, a full disk (a small tmpfs), a run directory another
command is using, and forged headers (.prnn, checkpoints, safetensors, config.json, IDX,
CIFAR-10). Each case expects either a refusal -- exit status 1, exactly one line starting with
"error:", no panic, no hang (a time limit), the file it names in the message -- with everything
the user had left as it was (file contents, device nodes, FIFOs, links), or a correct result.

    scripts/hostile.py [--json]          (PIXELRNN: the binary, default target/release/pixelrnn;
                                          MNIST_DIR: MNIST's four .gz files, default
                                          ../shared/data/mnist or the user cache)

Prints one line per case that failed and a table of counts per category (RELIABILITY.md keeps
it); exits 1 if any case failed. The full-disk cases need root (to mount a tmpfs) and are
skipped, with the reason, otherwise.
"""
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(os.environ.get("PIXELRNN", os.path.join(ROOT, "target/release/pixelrnn")))
INFO = ("using the averaged weights", "using the raw weights")

results = []  # (category, case, passed, detail)


def mnist_dir():
    for d in (os.environ.get("MNIST_DIR"), os.path.join(ROOT, "../shared/data/mnist"),
              os.path.expanduser("~/.cache/pixelrnn/mnist")):
        if d and os.path.isfile(os.path.join(d, "t10k-images-idx3-ubyte.gz")):
            return os.path.abspath(d)
    sys.exit("hostile.py: no MNIST files (set MNIST_DIR)")


def run(args, timeout=60, cwd=None):
    """(exit status or None on timeout, stdout, stderr)."""
    try:
        p = subprocess.run([BIN, *args], capture_output=True, timeout=timeout, cwd=cwd,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, "", (e.stderr or b"").decode("utf-8", "replace")


def snapshot(path):
    """What is at `path`, as a value that changes when anything there changes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ("absent",)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISFIFO(st.st_mode):
        return ("fifo", st.st_ino)
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return ("device", st.st_rdev, st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        # A run's lock file holds its last holder's PID: the lock's state, not the user's data.
        names = sorted(n for n in os.listdir(path) if n != ".lock")
        return ("dir", tuple((n, snapshot(os.path.join(path, n))) for n in names))
    with open(path, "rb") as f:
        return ("file", hashlib.sha256(f.read()).hexdigest())


def record(category, case, problems):
    results.append((category, case, not problems, "; ".join(problems)))


def refused(category, case, args, names=None, keep=(), timeout=60, cwd=None):
    """The command must refuse in one line naming `names` (if given), leaving `keep` as it was."""
    before = [snapshot(p) for p in keep]
    code, _, err = run(args, timeout, cwd)
    problems = []
    if code is None:
        problems.append(f"no answer within {timeout} s")
    elif code == 0:
        problems.append("exit 0 (accepted)")
    elif code != 1:
        problems.append(f"exit {code}")
    lines = [l for l in err.strip().splitlines() if l.strip() and not l.startswith(INFO)]
    if "panicked" in err or "RUST_BACKTRACE" in err:
        problems.append("panic")
    errors = [l for l in lines if l.startswith("error:")]
    if code not in (None, 0) and (len(errors) != 1 or len(lines) != 1):
        problems.append(f"{len(lines)} lines: {err.strip()[:300]!r}")
    if errors:
        problems.extend(weak(errors[0]))
    if names and errors and names not in errors[0]:
        problems.append(f"message does not name {names!r}: {errors[0][:200]!r}")
    for p, b in zip(keep, before):
        if snapshot(p) != b:
            problems.append(f"{p} changed")
    record(category, case, problems)


def weak(message):
    """What makes an error line weak: control characters or undecoded bytes, a Rust structure's
    debug form, an operating-system error with no path, or nothing said beyond "File exists"."""
    problems = []
    if any(ord(c) < 32 and c != "\t" for c in message) or "\ufffd" in message:
        problems.append(f"garbage in the message: {message[:120]!r}")
    if re.search(r"\b[A-Z][A-Za-z]+ \{ [a-z_]+: ", message):
        problems.append(f"a debug form in the message: {message[:160]!r}")
    if "os error" in message and "/" not in message:
        problems.append(f"an OS error without its path: {message[:160]!r}")
    if message.strip().endswith("File exists (os error 17)") and message.count(":") < 3:
        problems.append(f"only 'File exists': {message[:160]!r}")
    return problems


def succeeded(category, case, args, check=None, timeout=120):
    code, out, err = run(args, timeout)
    problems = []
    if code != 0:
        problems.append(f"exit {code}: {err.strip()[:300]!r}")
    elif check:
        reason = check(out)
        if reason:
            problems.append(reason)
    record(category, case, problems)


def setup(t, data):
    """A trained run, two PNGs, a .prnn file of them, the run's weights."""
    run_dir = f"{t}/run"
    code, _, err = run(["train", "--dataset", "mnist", "--data-dir", data, "--model", "pixel-cnn", "--preset",
                        "tiny", "--steps", "4", "--valid-every", "0", "--checkpoint-every", "2", "--out",
                        run_dir, "--quiet", "--no-verify"], 300)
    assert code == 0, err
    code, _, err = run(["sample", "--run", run_dir, "--count", "2", "--each", f"{t}/pngs", "--out",
                        f"{t}/grid.png"])
    assert code == 0, err
    code, _, err = run(["compress", "--run", run_dir, f"{t}/pngs", "-o", f"{t}/a.prnn"])
    assert code == 0, err
    code, _, err = run(["export", "--run", run_dir, "--out", f"{t}/w.safetensors"])
    assert code == 0, err
    return run_dir


def writers(t, r, target):
    """(name, argv) of every command that writes a file or folder the user names, aimed at
    `target`; `t` holds a fresh run folder for train."""
    return [
        ("compress -o", ["compress", "--run", r, f"{t}/pngs", "-o", target]),
        ("export --out", ["export", "--run", r, "--out", target]),
        ("eval --save-images", ["eval", "--run", r, "--split", "test", "--limit", "2", "--save-images", target]),
        ("sample --out", ["sample", "--run", r, "--count", "1", "--out", target]),
        ("complete --out", ["complete", "--run", r, "--split", "test", "--count", "1", "--out", target]),
        ("score --heatmap", ["score", "--run", r, "--split", "test", "--index", "0", "--heatmap", target]),
        ("receptive-field --out", ["receptive-field", "--run", r, "--pixel", "3,3", "--out", target]),
        ("decompress -o", ["decompress", f"{t}/a.prnn", "--run", r, "-o", target]),
        ("import --out", ["import", f"{t}/w.safetensors", "--out", target]),
        ("train --out", ["train", "--dataset", "mnist", "--model", "pixel-cnn", "--preset", "tiny", "--steps", "1",
                         "--out", target, "--quiet", "--no-verify"]),
        ("train --gradients-out", ["train", "--dataset", "mnist", "--model", "pixel-cnn", "--preset", "tiny",
                                   "--steps", "1", "--out", f"{t}/fresh-{len(results)}", "--quiet", "--no-verify",
                                   "--gradients-out", target]),
    ]


def with_data(argv, data):
    """Commands that read the dataset get its folder."""
    if argv[0] in ("train",) or ("--split" in argv and argv[0] != "compress"):
        return [*argv, "--data-dir", data]
    return argv


def devices(t, r, data):
    for dev in ("/dev/null", "/dev/full"):
        for name, argv in writers(t, r, dev):
            refused("device nodes", f"{name} {dev}", with_data(argv, data), names=dev, keep=[dev])
    for name, argv in [
        ("compress /dev/zero", ["compress", "--run", r, "/dev/zero", "-o", f"{t}/z.prnn"]),
        ("decompress /dev/zero", ["decompress", "/dev/zero", "--run", r, "-o", f"{t}/zout"]),
        ("import /dev/zero", ["import", "/dev/zero", "--out", f"{t}/zrun"]),
        ("score --image /dev/zero", ["score", "--run", r, "--image", "/dev/zero"]),
        ("complete --image /dev/zero", ["complete", "--run", r, "--image", "/dev/zero", "--out", f"{t}/zc.png"]),
    ]:
        refused("device nodes", name, argv, names="/dev/zero", timeout=30)


def fifos(t, r, data):
    fifo = f"{t}/fifo"
    os.mkfifo(fifo)
    for name, argv in writers(t, r, fifo):
        refused("FIFOs", f"{name} FIFO", with_data(argv, data), names=fifo, keep=[fifo], timeout=30)
    for name, argv in [
        ("compress FIFO", ["compress", "--run", r, fifo, "-o", f"{t}/f.prnn"]),
        ("decompress FIFO", ["decompress", fifo, "--run", r, "-o", f"{t}/fout"]),
        ("import FIFO", ["import", fifo, "--out", f"{t}/frun"]),
        ("score --image FIFO", ["score", "--run", r, "--image", fifo]),
        ("train --init-weights FIFO", ["train", "--dataset", "mnist", "--data-dir", data, "--model", "pixel-cnn",
                                       "--preset", "tiny", "--steps", "1", "--out", f"{t}/finit", "--quiet",
                                       "--no-verify", "--init-weights", fifo]),
    ]:
        refused("FIFOs", name, argv, names=fifo, keep=[fifo], timeout=30)
    # A run whose checkpoint is a FIFO.
    bad = f"{t}/fifo-run"
    shutil.copytree(r, bad)
    os.remove(f"{bad}/checkpoint-last.bin")
    os.mkfifo(f"{bad}/checkpoint-last.bin")
    refused("FIFOs", "eval of a run whose checkpoint is a FIFO",
            ["eval", "--run", bad, "--checkpoint", "last", "--split", "test", "--limit", "2", "--data-dir", data],
            names="checkpoint-last.bin", keep=[bad], timeout=30)


def links(t, r, data):
    victim = f"{t}/victim.txt"
    with open(victim, "w") as f:
        f.write("the user's file\n")
    link = f"{t}/link-out"
    os.symlink(victim, link)
    for name, argv in writers(t, r, link):
        if name.startswith(("decompress", "import", "train --out")):
            continue  # folders: below
        refused("symbolic links", f"{name} through a link", with_data(argv, data), names=link, keep=[victim, link])
    dangling = f"{t}/dangling"
    os.symlink(f"{t}/nowhere/else", dangling)
    refused("symbolic links", "compress -o a dangling link", ["compress", "--run", r, f"{t}/pngs", "-o", dangling],
            names=dangling, keep=[dangling])
    # A folder output that is a link to a folder of the user's.
    folder = f"{t}/users-folder"
    os.mkdir(folder)
    shutil.copy(victim, folder)
    folder_link = f"{t}/folder-link"
    os.symlink(folder, folder_link)
    refused("symbolic links", "decompress -o a link to a folder",
            ["decompress", f"{t}/a.prnn", "--run", r, "-o", folder_link], names=folder_link, keep=[folder, folder_link])
    refused("symbolic links", "import --out a link to a folder",
            ["import", f"{t}/w.safetensors", "--out", folder_link], names=folder_link, keep=[folder, folder_link])
    # sample --each into a folder with a link planted at the first image's name.
    each = f"{t}/each"
    os.mkdir(each)
    os.symlink(victim, f"{each}/00000.png")
    code, _, err = run(["sample", "--run", r, "--count", "2", "--each", each, "--out", f"{t}/each.png"])
    problems = [] if snapshot(victim) == ("file", hashlib.sha256(b"the user's file\n").hexdigest()) else ["victim changed"]
    if "panicked" in err:
        problems.append("panic")
    record("symbolic links", "sample --each past a planted link", problems)
    loop = f"{t}/loop.png"
    os.symlink(loop, loop)
    refused("symbolic links", "compress a link loop", ["compress", "--run", r, loop, "-o", f"{t}/l.prnn"], names=loop)
    # A checkpoint that is a link to a good checkpoint is read (the user's choice).
    linked = f"{t}/linked-run"
    os.mkdir(linked)
    for n in ("config.json", "checkpoint-last.bin"):
        os.symlink(os.path.abspath(f"{r}/{n}"), f"{linked}/{n}")
    succeeded("symbolic links", "eval of a run whose files are links",
              ["eval", "--run", linked, "--checkpoint", "last", "--split", "test", "--limit", "2", "--data-dir", data])


def full_disk(t, r, data):
    if os.geteuid() != 0:
        results.append(("full disk", "(all)", True, "skipped: mounting a tmpfs needs root"))
        return
    mnt = f"{t}/full"
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt]).returncode != 0:
        results.append(("full disk", "(all)", True, "skipped: mount failed"))
        return
    try:
        # What the user had there before the disk filled: a run, a .prnn file, a PNG.
        shutil.copytree(r, f"{mnt}/run")
        shutil.copy(f"{t}/a.prnn", f"{mnt}/keep.prnn")
        shutil.copy(f"{t}/grid.png", f"{mnt}/keep.png")
        try:
            with open(f"{mnt}/filler", "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError:
            pass
        kept = [f"{mnt}/run", f"{mnt}/keep.prnn", f"{mnt}/keep.png"]
        cases = [
            ("compress -o over a file", ["compress", "--run", r, f"{t}/pngs", "-o", f"{mnt}/keep.prnn"]),
            ("compress -o a new file", ["compress", "--run", r, f"{t}/pngs", "-o", f"{mnt}/new.prnn"]),
            ("export --out", ["export", "--run", r, "--out", f"{mnt}/w.safetensors"]),
            ("sample --out over a PNG", ["sample", "--run", r, "--count", "1", "--out", f"{mnt}/keep.png"]),
            ("decompress -o", ["decompress", f"{t}/a.prnn", "--run", r, "-o", f"{mnt}/out"]),
            ("import --out", ["import", f"{t}/w.safetensors", "--out", f"{mnt}/imported"]),
            ("train --out (fresh)", ["train", "--dataset", "mnist", "--data-dir", data, "--model", "pixel-cnn",
                                     "--preset", "tiny", "--steps", "2", "--out", f"{mnt}/fresh", "--quiet",
                                     "--no-verify"]),
            ("train --resume", ["train", "--out", f"{mnt}/run", "--resume", "--steps", "8", "--checkpoint-every", "1",
                                "--quiet", "--data-dir", data]),
            ("eval --save-images", ["eval", "--run", r, "--split", "test", "--limit", "2", "--save-images",
                                    f"{mnt}/e.u8", "--data-dir", data]),
        ]
        for name, argv in cases:
            # The run's lock file may be all train can write; it needs a little room.
            refused("full disk", name, argv, names=mnt, keep=kept, timeout=120)
        leftovers = [n for n in os.listdir(mnt) if n.endswith(".tmp") or n not in ("run", "keep.prnn", "keep.png",
                                                                                  "filler", "fresh", "imported")]
        record("full disk", "no temporary or partial file left", [f"left: {leftovers}"] if leftovers else [])
    finally:
        subprocess.run(["umount", mnt])


def concurrent(t, r, data):
    busy = f"{t}/busy"
    trainer = subprocess.Popen([BIN, "train", "--dataset", "mnist", "--data-dir", data, "--model", "pixel-cnn",
                                "--preset", "tiny", "--steps", "100000", "--valid-every", "0", "--checkpoint-every",
                                "20", "--out", busy, "--quiet", "--no-verify"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for _ in range(600):
            if os.path.isfile(f"{busy}/checkpoint-last.bin"):
                break
            time.sleep(0.1)
        keep = [f"{busy}/config.json"]
        pid = str(trainer.pid)
        same = ["--dataset", "mnist", "--data-dir", data, "--model", "pixel-cnn", "--preset", "tiny", "--steps", "5",
                "--out", busy, "--quiet", "--no-verify"]
        refused("concurrent use", "a second train --resume", ["train", *same, "--resume"], names=pid, keep=keep)
        refused("concurrent use", "train --overwrite of a running run", ["train", *same, "--overwrite"], names=pid,
                keep=keep)
        refused("concurrent use", "a fresh train into a running run", ["train", *same], names=busy, keep=keep)
        refused("concurrent use", "import --out a running run", ["import", f"{t}/w.safetensors", "--out", busy],
                names=busy, keep=keep)
        refused("concurrent use", "decompress -o a running run", ["decompress", f"{t}/a.prnn", "--run", r, "-o", busy],
                names=busy, keep=keep)
        refused("concurrent use", "export --out onto the running run's checkpoint",
                ["export", "--run", busy, "--checkpoint", "last", "--out", f"{busy}/checkpoint-last.bin"],
                names="checkpoint-last.bin")
        succeeded("concurrent use", "eval reads a running run",
                  ["eval", "--run", busy, "--checkpoint", "last", "--split", "test", "--limit", "2", "--data-dir", data])
    finally:
        trainer.send_signal(signal.SIGINT)
        code = trainer.wait(120)
    record("concurrent use", "the running train stops cleanly on Ctrl-C (exit 130)",
           [] if code == 130 else [f"exit {code}"])
    succeeded("concurrent use", "the stopped run resumes",
              ["train", "--out", busy, "--resume", "--steps", "1000000", "--time-limit", "1", "--quiet",
               "--data-dir", data])
    # Two compressions into one file at once: the file is one of them, whole.
    target = f"{t}/both.prnn"
    procs = [subprocess.Popen([BIN, "compress", "--run", r, f"{t}/pngs", "-o", target],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    [p.wait(120) for p in procs]
    succeeded("concurrent use", "two compress -o one file: a whole file",
              ["decompress", target, "--run", r, "-o", f"{t}/both-out"])


def forged(t, r, data):
    original = open(f"{t}/a.prnn", "rb").read()

    def prnn(case, mutate, recheck=True):
        b = bytearray(original)
        mutate(b)
        if recheck:  # a forger who recomputes the checksums
            names_len, payload_len = struct.unpack_from("<QQ", b, 104)
            body = b[160:]
            b[120:152] = hashlib.sha256(body).digest()
            b[152:160] = hashlib.sha256(b[:152]).digest()[:8]
        path = f"{t}/forged-{len(results)}.prnn"
        open(path, "wb").write(b)
        refused("forged headers", f".prnn: {case}", ["decompress", path, "--run", r, "-o", f"{t}/fo-{len(results)}"],
                names=path, timeout=60)

    prnn("wrong magic", lambda b: b.__setitem__(slice(0, 8), b"PIXRNNY\0"))
    prnn("version 2", lambda b: struct.pack_into("<I", b, 8, 2))
    prnn("2^40 images", lambda b: struct.pack_into("<Q", b, 92, 1 << 40))
    prnn("0 images", lambda b: struct.pack_into("<Q", b, 92, 0))
    prnn("chunk 0", lambda b: struct.pack_into("<I", b, 100, 0))
    prnn("chunk 2^31", lambda b: struct.pack_into("<I", b, 100, 1 << 31))
    prnn("names length 2^60", lambda b: struct.pack_into("<Q", b, 104, 1 << 60))
    prnn("payload length + 1", lambda b: struct.pack_into("<Q", b, 112, struct.unpack_from("<Q", b, 112)[0] + 1))
    prnn("image 65536 x 65536", lambda b: struct.pack_into("<II", b, 84, 65536, 65536))
    prnn("levels 1", lambda b: struct.pack_into("<I", b, 88, 1))
    prnn("a chunk length beyond the payload", lambda b: struct.pack_into("<Q", b, 160, 1 << 50))
    prnn("the stream's words garbled", lambda b: b.__setitem__(slice(180, 200), bytes(range(20))))
    prnn("bytes after the end", lambda b: b.extend(b"\0" * 8))
    prnn("a byte flipped, checksums kept", lambda b: b.__setitem__(170, b[170] ^ 1), recheck=False)
    prnn("truncated", lambda b: b.__delitem__(slice(len(b) - 5, len(b))), recheck=False)

    # The compact container (version 2): one check over the whole file.
    code, _, err = run(["compress", "--run", r, f"{t}/pngs", "--compact", "-o", f"{t}/c.prnn"])
    assert code == 0, err
    small = open(f"{t}/c.prnn", "rb").read()

    def compact(case, body):
        path = f"{t}/forged-{len(results)}.prnn"
        open(path, "wb").write(body)
        refused("forged headers", f"compact .prnn: {case}",
                ["decompress", path, "--run", r, "-o", f"{t}/fc-{len(results)}"], names=path)

    def resealed(body):
        return body + hashlib.sha256(body).digest()[:4]

    compact("truncated", small[:-3])
    compact("a byte flipped", small[:20] + bytes([small[20] ^ 1]) + small[21:])
    # After magic (4) and digests (12): the image's 4 varints, then the count: forged to 2^40.
    head, rest = small[:16], small[16:-4]
    varint_2_40 = bytes([0x80] * 5 + [0x20])
    compact("2^40 images, resealed", resealed(head + rest[:5] + varint_2_40 + rest[6:]))
    compact("a varint of 11 bytes, resealed", resealed(head + bytes([0xff] * 11) + rest))
    compact("only its magic", b"PRZ2")

    ckpt = open(f"{r}/checkpoint-last.bin", "rb").read()

    def checkpoint(case, body):
        d = f"{t}/ckpt-{len(results)}"
        shutil.copytree(r, d)
        open(f"{d}/checkpoint-last.bin", "wb").write(body)
        if os.path.exists(f"{d}/checkpoint-best.bin"):
            os.remove(f"{d}/checkpoint-best.bin")
        refused("forged headers", f"checkpoint: {case}",
                ["eval", "--run", d, "--checkpoint", "last", "--split", "test", "--limit", "2", "--data-dir", data],
                names="checkpoint-last.bin", keep=[d])

    checkpoint("truncated to half", ckpt[: len(ckpt) // 2])
    checkpoint("empty", b"")
    checkpoint("a byte flipped in the weights", ckpt[:200] + bytes([ckpt[200] ^ 0x40]) + ckpt[201:])
    checkpoint("a byte flipped in the header", ckpt[:9] + bytes([ckpt[9] ^ 0xFF]) + ckpt[10:])
    checkpoint("another file's bytes", original)

    def safetensors(case, body):
        path = f"{t}/forged-{len(results)}.safetensors"
        open(path, "wb").write(body)
        refused("forged headers", f"safetensors: {case}", ["import", path, "--out", f"{t}/imp-{len(results)}"],
                names=path)

    def st(header, data_bytes=b""):
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data_bytes

    weights = open(f"{t}/w.safetensors", "rb").read()
    (n,) = struct.unpack_from("<Q", weights, 0)
    header = json.loads(weights[8:8 + n])
    safetensors("header length 2^60", struct.pack("<Q", 1 << 60) + weights[8:])
    safetensors("header not JSON", struct.pack("<Q", 10) + b"\xff" * 10)
    safetensors("a tensor of 2^40 elements", st({"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20],
                                                       "data_offsets": [0, 8]}}, b"\0" * 8))
    safetensors("offsets beyond the file", st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 1 << 40]}}))
    bad = dict(header)
    first = next(k for k in bad if k != "__metadata__")
    bad[first] = dict(bad[first], shape=[s * 2 for s in bad[first]["shape"]])
    h = json.dumps(bad).encode()
    safetensors("a shape the config cannot have", struct.pack("<Q", len(h)) + h + weights[8 + n:])
    meta = dict(header)
    if "__metadata__" in meta:
        m = dict(meta["__metadata__"])
        cfg = json.loads(m.get("pixelrnn.model", "{}"))
        cfg["num_layers"] = 1 << 30
        m["pixelrnn.model"] = json.dumps(cfg)
        meta["__metadata__"] = m
        h = json.dumps(meta).encode()
        safetensors("metadata with 2^30 layers", struct.pack("<Q", len(h)) + h + weights[8 + n:])
    safetensors("truncated", weights[: len(weights) - 100])

    config = json.load(open(f"{r}/config.json"))

    def config_case(case, text):
        d = f"{t}/cfg-{len(results)}"
        shutil.copytree(r, d)
        open(f"{d}/config.json", "w").write(text)
        refused("forged headers", f"config.json: {case}",
                ["eval", "--run", d, "--checkpoint", "last", "--split", "test", "--limit", "2", "--data-dir", data],
                names="config.json", keep=[d])

    def patched(**model):
        c = json.loads(json.dumps(config))
        c["model"].update(model)
        return json.dumps(c)

    config_case("2^40 layers", patched(num_layers=1 << 40))
    config_case("h = 0", patched(hidden_channels=0))
    config_case("first kernel 480001", patched(first_kernel=480001))
    config_case("an unknown architecture", patched(architecture="transformer"))
    config_case("wider than its checkpoint", patched(hidden_channels=config["model"]["hidden_channels"] * 2))
    config_case("truncated", json.dumps(config)[:40])

    def dataset(case, files):
        d = f"{t}/data-{len(results)}"
        shutil.copytree(data, d)
        for name, body in files.items():
            open(f"{d}/{name}", "wb").write(body)
        refused("forged headers", f"MNIST: {case}",
                ["train", "--dataset", "mnist", "--data-dir", d, "--model", "pixel-cnn", "--preset", "tiny",
                 "--steps", "1", "--out", f"{t}/dr-{len(results)}", "--quiet", "--no-verify"], names=d)

    dataset("wrong magic", {"train-images-idx3-ubyte.gz": gzip.compress(struct.pack(">IIII", 0x0803ABCD, 2, 28, 28))})
    dataset("2^31 images declared", {"train-images-idx3-ubyte.gz": gzip.compress(
        struct.pack(">IIII", 0x00000803, 1 << 31, 28, 28) + b"\0" * 784)})
    dataset("truncated gzip", {"train-images-idx3-ubyte.gz": open(f"{data}/train-images-idx3-ubyte.gz", "rb").read()[:5000]})
    dataset("labels of another length", {"train-labels-idx1-ubyte.gz": gzip.compress(
        struct.pack(">II", 0x00000801, 7) + b"\1" * 7)})


def messages(t, r, data):
    """Bad input the earlier round answered weakly: each must be one line naming the file."""
    regular = f"{t}/a-file"
    open(regular, "w").write("x")
    refused("messages", "train --out a regular file", ["train", "--dataset", "mnist", "--data-dir", data, "--model",
            "pixel-cnn", "--preset", "tiny", "--steps", "1", "--out", regular, "--quiet", "--no-verify"],
            names=regular, keep=[regular])
    refused("messages", "eval --run a missing folder", ["eval", "--run", f"{t}/no-such-run"], names="no-such-run")
    empty = f"{t}/empty-run"
    os.mkdir(empty)
    refused("messages", "eval --run a folder without a run", ["eval", "--run", empty], names=empty)
    refused("messages", "train --data-dir a missing folder", ["train", "--dataset", "mnist", "--data-dir",
            f"{t}/no-data", "--model", "pixel-cnn", "--preset", "tiny", "--steps", "1", "--out", f"{t}/nd",
            "--quiet", "--no-verify"], names="no-data")
    garbage = f"{t}/garbage.png"
    open(garbage, "wb").write(bytes(range(256)) * 4)
    refused("messages", "compress a file of random bytes named .png",
            ["compress", "--run", r, garbage, "-o", f"{t}/g.prnn"], names=garbage)
    refused("messages", "score an empty PNG", ["score", "--run", r, "--image", f"{t}/a-file"], names="a-file")
    rgb = f"{t}/rgb"
    os.mkdir(rgb)
    code, _, _ = run(["sample", "--run", r, "--count", "1", "--out", f"{t}/grid2.png"])
    refused("messages", "compress a PNG of another size (a sample grid)",
            ["compress", "--run", r, f"{t}/grid2.png", "-o", f"{t}/s.prnn"], names="grid2.png")
    tarball = f"{t}/cifar-10-binary.tar.gz"
    open(tarball, "wb").write(gzip.compress(bytes(range(256)) * 64))
    mirror = f"{t}/mirror"
    os.mkdir(mirror)
    shutil.move(tarball, mirror)
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                               mirror], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        refused("messages", "data fetch from a mirror serving a tar of random bytes",
                ["data", "fetch", "cifar10", "--data-dir", f"{t}/cifar", "--mirror", f"http://127.0.0.1:{port}"],
                names="cifar-10-binary.tar.gz", timeout=60)
    finally:
        server.kill()
    bom = f"{t}/bom-run"
    shutil.copytree(r, bom)
    text = open(f"{bom}/config.json", encoding="utf-8").read()
    open(f"{bom}/config.json", "w", encoding="utf-8").write("\ufeff" + text)
    succeeded("messages", "a config.json with a UTF-8 byte-order mark is read",
              ["eval", "--run", bom, "--split", "test", "--limit", "2", "--data-dir", data])
    refused("messages", "decompress a PNG", ["decompress", f"{t}/grid.png", "--run", r, "-o", f"{t}/dp"],
            names="grid.png")
    refused("messages", "import a .prnn file", ["import", f"{t}/a.prnn", "--out", f"{t}/ip"], names="a.prnn")


def main():
    as_json = "--json" in sys.argv
    data = mnist_dir()
    t = tempfile.mkdtemp(prefix="pixelrnn-hostile-")
    try:
        r = setup(t, data)
        for category in (devices, fifos, links, full_disk, concurrent, forged, messages):
            category(t, r, data)
    finally:
        shutil.rmtree(t, ignore_errors=True)
    categories = {}
    for category, case, passed, detail in results:
        c = categories.setdefault(category, [0, 0])
        c[0] += 1
        c[1] += passed
        if not passed:
            print(f"FAILED {category}: {case}: {detail}")
    if as_json:
        print(json.dumps({c: {"cases": n, "passed": p} for c, (n, p) in categories.items()}))
    else:
        print(f"{'category':<20} {'cases':>6} {'passed':>7}")
        for c, (n, p) in categories.items():
            print(f"{c:<20} {n:>6} {p:>7}")
        print(f"{'total':<20} {sum(n for n, _ in categories.values()):>6} {sum(p for _, p in categories.values()):>7}")
    for category, case, passed, detail in results:
        if detail.startswith("skipped"):
            print(f"note: {category}: {detail}")
    sys.exit(0 if all(p for _, _, p, _ in results) else 1)


if __name__ == "__main__":
    main()
