#!/usr/bin/env bash
# Runs our benchmarks and the peers' (Pyro, ChiRho, NumPyro) back to back and prints the
# side-by-side ratios. Run it on an idle machine: timings on 2 shared cores drift by tens of
# percent, ratios taken in one run do not.
#
#   bash scripts/compare.sh                    # PEERS_DIR defaults to ../shared/peers
#   PEERS_DIR=/path/to/peers bash scripts/compare.sh
#   PEERS_PY=/venv/bin/python PEERS_OUT=/tmp/peers.jsonl bash scripts/compare.sh
#                                              # a venv elsewhere, a read-only peers directory
#
# Writes results/ppl.jsonl (ours) and $PEERS_OUT (theirs; default $PEERS_DIR/results.jsonl). Exit status: non-zero
# when a build or a verification fails, or (from compare.py) when we are behind a peer.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PEERS_DIR="$(cd "${PEERS_DIR:-$ROOT/../shared/peers}" 2>/dev/null && pwd)" || {
    echo "compare: peers directory not found (set PEERS_DIR; default ../shared/peers)" >&2
    exit 2
}
if [ -z "${PEERS_PY:-}" ] && [ ! -x "$PEERS_DIR/.venv/bin/python" ]; then
    echo "compare: the peers' virtual environment is missing; create it first with" >&2
    echo "    bash $PEERS_DIR/setup.sh" >&2
    exit 2
fi

echo "== building ppl-bench (release)" >&2
cargo build --release --bin ppl-bench
mkdir -p results
echo "== ppl-bench all -> results/ppl.jsonl" >&2
"${CARGO_TARGET_DIR:-target}/release/ppl-bench" all | tee results/ppl.jsonl || {
    echo "compare: ppl-bench failed (a check did not pass or it errored); see above" >&2
    exit 1
}

export PEERS_OUT="${PEERS_OUT:-$PEERS_DIR/results.jsonl}"
echo "== peers: $PEERS_DIR/run_all.sh -> $PEERS_OUT" >&2
bash "$PEERS_DIR/run_all.sh" || {
    echo "compare: a peer benchmark failed (see above and $PEERS_OUT)" >&2
    exit 1
}

echo "== comparison" >&2
python3 "$PEERS_DIR/compare.py" results/ppl.jsonl "$PEERS_OUT"
