"""Python onnxruntime side of `brainloop bench regions`.

Loads the same model files as the Rust regions with the same session settings (intra-op threads
from --threads, one inter-op thread, sequential execution, all graph optimisations) and the same
inputs, then answers commands on stdin, one per line:
    <region> <iterations>   ->  one JSON line: {"region": ..., "ns": [wall ns], "cpu_ns": [thread CPU ns]}
    quit
Only `session.run` is timed, as on the Rust side.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

SENTENCE = "go to the red ball next to the blue box and stop there"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu", type=int, default=-1, help="pin to this CPU (as the Rust side is)")
    a = ap.parse_args()
    if a.cpu >= 0:
        os.sched_setaffinity(0, {a.cpu})
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    prov = ["CPUExecutionProvider"]
    m = a.models.rstrip("/")
    vis = ort.InferenceSession(f"{m}/vision.onnx", so, providers=prov)
    lang = ort.InferenceSession(f"{m}/language.onnx", so, providers=prov)
    vad = ort.InferenceSession(f"{m}/silero_vad.onnx", so, providers=prov)
    tok = Tokenizer.from_file(f"{m}/language.tokenizer.json")
    tok.no_padding()

    # Same inputs as src/regions/bench.rs.
    image = (np.arange(224 * 224 * 3) % 256).astype(np.float32).reshape(1, 224, 224, 3)
    ids = np.array([tok.encode(SENTENCE).ids], np.int64)
    mask = np.ones_like(ids)
    t = np.arange(576, dtype=np.float64)
    audio = (0.3 * np.sin(2 * np.pi * 440.0 * t / 16000.0)).astype(np.float32).reshape(1, 576)
    state = [np.zeros((2, 1, 128), np.float32)]
    sr = np.array(16000, np.int64)

    def run_vision():
        vis.run(None, {"image": image})

    def run_language():
        lang.run(None, {"input_ids": ids, "attention_mask": mask})

    def run_audition():
        out, st = vad.run(None, {"input": audio, "state": state[0], "sr": sr})
        state[0] = st

    fns = {"vision": run_vision, "language": run_language, "audition": run_audition}
    print(json.dumps({"ready": True, "tokens": int(ids.shape[1])}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] == "quit":
            break
        f, n = fns[parts[0]], int(parts[1])
        ns, cpu = [], []
        for _ in range(n):
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            f()
            ns.append(time.perf_counter_ns() - t0)
            cpu.append(time.thread_time_ns() - c0)
        print(json.dumps({"region": parts[0], "ns": ns, "cpu_ns": cpu}), flush=True)


if __name__ == "__main__":
    main()
