"""Diagnosis (not part of the package): what a gradient step costs per sample at the batch sizes of
PPO (minibatches of 512) and of Double DQN (32, or 128), on this machine. Usage:

    python scripts/diagnosis/batch_cost.py [--repeats 7] [--representation relative|absolute]

The network is Double DQN's online Q-network with the zoo's encoder (relreps' 256-d latent and head):
for each batch size, interleaved round by round, a forward and backward pass of the online network
plus one Adam step, and (what a Double DQN step adds) two forward passes without gradients of the
same batch (the next observations through the online and target networks). Medians, in ms per
sample; random frames (the cost does not depend on their content). For a relative encoder, also the
cost of one anchor update (the anchor frames embedded again, then the moving average), which a
relative Double DQN run pays for the online and the target encoder once per 16 gradient steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    from relreps import algos
    from relreps.envs import make_vec_env
    from relreps.training import TrainConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--representation", choices=("relative", "absolute"), default="relative")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    args = parser.parse_args()
    cfg = TrainConfig(representation=args.representation, algo="ddqn")
    venv = make_vec_env(cfg.color, 1, seed=0, workers=0)
    enc_class, enc_kwargs = cfg.encoder()
    model = algos.make_model("ddqn", venv, encoder_class=enc_class, encoder_kwargs=enc_kwargs,
                             head_dim=cfg.head_dim, seed=0, device="cpu", learning_starts=0, buffer_size=64)
    online, target, opt = model.policy.q_net, model.policy.q_net_target, model.policy.optimizer
    rng = np.random.default_rng(0)
    frames = {b: torch.as_tensor(rng.integers(0, 256, size=(b, 3, 84, 84), dtype=np.uint8)) for b in args.batches}
    times: dict[int, dict[str, list[float]]] = {b: {"train": [], "targets": []} for b in args.batches}
    for rnd in range(args.repeats + 1):  # round 0 warms up
        for b in args.batches:
            x = frames[b]
            t0 = time.perf_counter()
            loss = online(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            t1 = time.perf_counter()
            with torch.no_grad():
                online(x)
                target(x)
            t2 = time.perf_counter()
            if rnd:
                times[b]["train"].append((t1 - t0) / b * 1e3)
                times[b]["targets"].append((t2 - t1) / b * 1e3)
    anchor_ms = []
    for enc in algos.relative_encoders(model)[:1]:  # the online encoder's anchors, embedded again
        for rnd in range(args.repeats + 1):
            t0 = time.perf_counter()
            enc.update_anchors(1)
            if rnd:
                anchor_ms.append((time.perf_counter() - t0) * 1e3)
    venv.close()
    print(f"Double DQN online network ({args.representation} encoder, {cfg.latent_dim}-d latent, head "
          f"{cfg.head_dim}), {torch.get_num_threads()} torch threads, medians of {args.repeats} interleaved rounds:")
    print(f"{'batch':>6s} {'fwd+bwd+Adam':>14s} {'2 fwd (targets)':>16s} {'a DDQN step':>12s}   (ms per sample)")
    for b in args.batches:
        train, targets = float(np.median(times[b]["train"])), float(np.median(times[b]["targets"]))
        print(f"{b:6d} {train:14.3f} {targets:16.3f} {train + targets:12.3f}")
    if anchor_ms:
        n = algos.relative_encoders(model)[0].anchor_embeddings.shape[0]
        print(f"one anchor update of one encoder (its {n} anchor frames embedded again): "
              f"{float(np.median(anchor_ms)):.1f} ms")


if __name__ == "__main__":
    main()
