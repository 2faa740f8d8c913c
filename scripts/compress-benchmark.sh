#!/usr/bin/env bash
# Lossless compression with a trained run's model, measured end to end on a split of its dataset
# (default: test): compress (with the size report against PNG, WebP lossless and JPEG XL lossless where
# cwebp / cjxl are installed), decompress, then compress the decompressed PNGs again and check
# that the two .prnn files are identical byte for byte (same names, same pixels => same file).
# Prints one JSON line.
#
#   scripts/compress-benchmark.sh RUN_DIR [LIMIT]      (SPLIT=valid for a dataset without a test split)
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1
limit=${2:-}
bin=${PIXELRNN:-target/release/pixelrnn}
[[ -x $bin ]] || cargo build --release -q -p pixelrnn-cli
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s.%N)
"$bin" compress --run "$run" --split "${SPLIT:-test}" ${limit:+--limit "$limit"} -o "$tmp/a.prnn" > /dev/null 2>&1
t1=$(date +%s.%N)
"$bin" decompress "$tmp/a.prnn" --run "$run" -o "$tmp/out" 2> /dev/null
t2=$(date +%s.%N)
"$bin" compress --run "$run" "$tmp/out" -o "$tmp/b.prnn" 2> /dev/null
if cmp -s "$tmp/a.prnn" "$tmp/b.prnn"; then exact=true; else exact=false; fi
"$bin" compress --run "$run" --split "${SPLIT:-test}" ${limit:+--limit "$limit"} -o "$tmp/c.prnn" --json > "$tmp/report.json"
python3 - "$tmp/report.json" "$run" "$t0" "$t1" "$t2" "$exact" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
run, t0, t1, t2, exact = sys.argv[2], *map(float, sys.argv[3:6]), sys.argv[6] == "true"
n = r["images"]
dims = r["bytes"] * 8 / r["file_bits_per_dim"] / n
bpd = lambda b: round(b * 8 / (dims * n), 4) if b is not None else None
print(json.dumps({
    "run": run, "images": n, "round_trip_exact": exact,
    "nll_bits_per_dim": round(r["nll_bits_per_dim"], 4), "file_bits_per_dim": round(r["file_bits_per_dim"], 4),
    "overhead": round(r["overhead"], 5), "file_bytes": r["bytes"],
    "png_bits_per_dim": bpd(r["png_bytes"]), "webp_bits_per_dim": bpd(r.get("webp_bytes")),
    "jxl_bits_per_dim": bpd(r.get("jxl_bytes")), "encoders_missing": r["encoders_missing"],
    "encode_images_per_sec": round(n / (t1 - t0), 1), "decode_images_per_sec": round(n / (t2 - t1), 1),
}))
PY
