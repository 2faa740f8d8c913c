"""A bounded load test of `pixelrnn serve` (scripts/serve-load.sh starts the server): CLIENTS
threads post completions of one PNG to 127.0.0.1 for SECONDS, each waiting for its stream to
finish; prints one JSON line: requests served, "busy" answers (HTTP 503), errors, latency
percentiles of the served ones, and the server's peak resident memory (VmHWM of --pid).

    python3 scripts/serve_load.py --addr 127.0.0.1:8080 --model ID --image digit.png \\
        --clients 8 --seconds 60 --samples 2 --pid PID
"""

import argparse
import http.client
import json
import statistics
import threading
import time


def one(addr, path, body):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "image/png"})
        response = conn.getresponse()
        data = response.read()
        return response.status, data
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--rows", type=int, default=14)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    body = open(args.image, "rb").read()
    path = f"/api/complete?model={args.model}&rows={args.rows}&samples={args.samples}&seed=1"
    lock = threading.Lock()
    served, busy, errors, latencies = [0], [0], [], []
    stop_at = time.monotonic() + args.seconds

    def client():
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                status, data = one(args.addr, path, body)
            except Exception as e:  # noqa: BLE001  (every failure is counted)
                with lock:
                    errors.append(repr(e))
                continue
            elapsed = time.monotonic() - started
            with lock:
                if status == 200 and b"event: done" in data:
                    served[0] += 1
                    latencies.append(elapsed)
                elif status == 503:
                    busy[0] += 1
                else:
                    errors.append(f"HTTP {status}: {data[-200:]!r}")
            if status == 503:
                time.sleep(0.05)  # a client told "busy" waits a little, as a page would

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = None
    if args.pid:
        for line in open(f"/proc/{args.pid}/status"):
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) // 1024
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    print(json.dumps({
        "clients": args.clients,
        "seconds": args.seconds,
        "samples_per_request": args.samples,
        "served": served[0],
        "busy_503": busy[0],
        "errors": len(errors),
        "first_errors": errors[:3],
        "latency_s": {"p50": round(q[49], 3), "p90": round(q[89], 3), "p99": round(q[98], 3)},
        "server_peak_rss_mib": peak,
    }))


if __name__ == "__main__":
    main()
