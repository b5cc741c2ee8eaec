"""Single-file PPO in the style of CleanRL (ppo.py + ppo_continuous_action.py).

One file, top to bottom: arguments, environment construction, the agent, the
rollout loop, GAE, the clipped-surrogate update. It runs on any gymnasium id
and on omnigym ids (everything is built with ``omnigym.make``):

    .venv/bin/python benchmarks/cleanrl_ppo.py --env-id CartPole-v1 --total-timesteps 50000
    .venv/bin/python benchmarks/cleanrl_ppo.py --env-id HalfCheetah-v5 --total-timesteps 20000
    .venv/bin/python benchmarks/cleanrl_ppo.py --env-id household/Hold-v0 \\
        --env-kwargs '{"mode": "vector", "progress_reward": 0.5}'

- Discrete action spaces: a categorical policy. If the environment's info has
  ``action_mask`` (bool array of length ``action_space.n``), logits outside the
  mask are set to a large negative number before sampling, and the mask is
  stored with the rollout so the update scores actions under the same mask.
- Box action spaces: a Gaussian with a state-independent log-std; sampled
  actions are stored unclipped and clipped to the bounds only when sent to
  the environment (as CleanRL does).
- Vector envs use ``AutoresetMode.SAME_STEP``: the step that ends an episode
  already returns the next episode's first observation (and its info, so its
  action mask), the last observation is in ``infos["final_obs"]`` and the last
  info in ``infos["final_info"]``. A truncated episode is bootstrapped with
  ``gamma * V(final_obs)`` added to its last reward; a terminated one is not;
  GAE never crosses an episode boundary. Every stored transition is real, so
  nothing needs masking out of the update.

Per iteration it prints global step, SPS (env steps per second, wall clock),
mean return of the episodes finished in that iteration and, where info has
``success``, their success rate. At the end it prints one line
``RESULT {json}`` with the throughput split into rollout time (action
selection + env.step) and update time. ``train(args) -> dict`` is the same
run, for import.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Categorical, Normal

import omnigym


def arg(default, help: str):
    """A dataclass field with a default and its command-line help."""
    return field(default=default, metadata={"help": help})


@dataclass
class Args:
    # -- experiment
    env_id: str = arg("CartPole-v1", "environment id: any gymnasium id or an omnigym id (household/Hold-v0)")
    env_kwargs: str = arg("{}", 'JSON dict of keyword arguments for omnigym.make, e.g. \'{"mode": "vector"}\'')
    total_timesteps: int = arg(50_000, "total environment steps (summed over the vector envs)")
    seed: int = arg(1, "seed of python, numpy, torch and the environments (env i gets seed + i)")
    torch_threads: int = arg(1, "torch.set_num_threads (1 is fastest for these small MLPs)")
    device: str = arg("cpu", "torch device")
    quiet: bool = arg(False, "do not print the per-iteration lines (the RESULT line is always printed)")
    return_window: int = arg(20, "mean_return_last averages the last this many finished episodes")
    # -- environment / rollout
    num_envs: int = arg(4, "number of environments in the SyncVectorEnv")
    num_steps: int = arg(128, "steps per environment per rollout (batch = num_envs * num_steps)")
    use_action_mask: bool = arg(True, "discrete envs: sample only actions allowed by info['action_mask'] when present")
    normalize: bool = arg(False, "NormalizeObservation + NormalizeReward wrappers (CleanRL's MuJoCo setup)")
    # -- network
    hidden: str = arg("64,64", "hidden layer sizes of the actor and of the critic MLPs (tanh)")
    # -- optimisation
    learning_rate: float = arg(2.5e-3, "Adam learning rate")
    anneal_lr: bool = arg(True, "linearly anneal the learning rate to 0 over the run")
    gamma: float = arg(0.99, "discount factor")
    gae_lambda: float = arg(0.95, "lambda of generalised advantage estimation")
    num_minibatches: int = arg(4, "minibatches per epoch")
    update_epochs: int = arg(10, "passes over the batch per update")
    norm_adv: bool = arg(True, "normalise advantages per minibatch")
    clip_coef: float = arg(0.2, "surrogate clipping coefficient")
    clip_vloss: bool = arg(True, "clip the value loss around the old values (as in the PPO paper's code)")
    ent_coef: float = arg(0.0, "entropy bonus coefficient")
    vf_coef: float = arg(0.5, "value loss coefficient")
    max_grad_norm: float = arg(0.5, "global gradient-norm clip")
    target_kl: float | None = arg(None, "stop the epochs early once the approximate KL exceeds this")


def parse_args(argv=None) -> Args:
    """argparse over the fields of Args: --env-id, --total-timesteps, --anneal-lr/--no-anneal-lr, ..."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {f.default})"
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        elif f.name == "target_kl":
            parser.add_argument(flag, type=float, default=f.default, help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            parser.add_argument(flag, type=kind, default=f.default, help=help_text)
    return Args(**vars(parser.parse_args(argv)))


# ----------------------------------------------------------------------------- environments
def make_env(env_id: str, env_kwargs: dict, normalize: bool, gamma: float):
    def thunk():
        env = omnigym.make(env_id, **env_kwargs)
        if isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) > 1:
            env = gym.wrappers.FlattenObservation(env)
        env = gym.wrappers.RecordEpisodeStatistics(env)  # raw returns, before any reward normalisation
        if normalize:
            env = gym.wrappers.NormalizeObservation(env)
            env = gym.wrappers.TransformObservation(env, lambda o: np.clip(o, -10, 10), env.observation_space)
            env = gym.wrappers.NormalizeReward(env, gamma=gamma)
            env = gym.wrappers.TransformReward(env, lambda r: float(np.clip(r, -10, 10)))
        return env
    return thunk


# ----------------------------------------------------------------------------- agent
def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp(n_in: int, hidden: list[int], n_out: int, out_std: float) -> nn.Sequential:
    layers, last = [], n_in
    for h in hidden:
        layers += [layer_init(nn.Linear(last, h)), nn.Tanh()]
        last = h
    layers.append(layer_init(nn.Linear(last, n_out), std=out_std))
    return nn.Sequential(*layers)


MASKED_LOGIT = -1e8  # a masked action's logit: probability exactly 0 after softmax


class Agent(nn.Module):
    """Separate actor and critic MLPs. Discrete: categorical over (masked)
    logits. Box: Gaussian with a state-independent, learned log-std."""

    def __init__(self, obs_dim: int, action_space: gym.Space, hidden: list[int]):
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.critic = mlp(obs_dim, hidden, 1, out_std=1.0)
        if self.discrete:
            self.actor = mlp(obs_dim, hidden, int(action_space.n), out_std=0.01)
        else:
            act_dim = int(np.prod(action_space.shape))
            self.actor = mlp(obs_dim, hidden, act_dim, out_std=0.01)
            self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def get_action_and_value(self, x, action=None, mask=None):
        """Sample (or score a given) action; returns action, log-prob, entropy, value."""
        if self.discrete:
            logits = self.actor(x)
            if mask is not None:
                logits = torch.where(mask, logits, torch.full_like(logits, MASKED_LOGIT))
            dist = Categorical(logits=logits)
            if action is None:
                action = dist.sample()
            return action, dist.log_prob(action), dist.entropy(), self.get_value(x)
        mean = self.actor(x)
        std = self.actor_logstd.expand_as(mean).exp()
        dist = Normal(mean, std)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action).sum(-1), dist.entropy().sum(-1), self.get_value(x)


# ----------------------------------------------------------------------------- training
def _done_entries(infos: dict, key: str, done: np.ndarray):
    """Values of final_info[key] for the envs whose episode ended this step."""
    final = infos.get("final_info", {})
    if key not in final:
        return np.zeros(0)
    present = final.get("_" + key, np.ones_like(done))
    return np.asarray(final[key])[done & present]


def train(args: Args) -> dict:
    env_kwargs = json.loads(args.env_kwargs) if isinstance(args.env_kwargs, str) else dict(args.env_kwargs)
    hidden = [int(h) for h in str(args.hidden).split(",") if h.strip()]
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = max(1, args.total_timesteps // batch_size)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    device = torch.device(args.device)

    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, env_kwargs, args.normalize, args.gamma) for _ in range(args.num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    assert isinstance(obs_space, gym.spaces.Box), f"needs a flat Box observation space, got {obs_space}"
    assert isinstance(act_space, (gym.spaces.Discrete, gym.spaces.Box)), f"unsupported action space {act_space}"
    discrete = isinstance(act_space, gym.spaces.Discrete)
    obs_dim = int(np.prod(obs_space.shape))

    agent = Agent(obs_dim, act_space, hidden).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # Rollout storage: obs[t] was seen, actions[t] taken (under masks[t]), rewards[t]
    # received and ends[t] = the episode ended with that step.
    act_shape = () if discrete else act_space.shape
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim), device=device)
    actions = torch.zeros((args.num_steps, args.num_envs) + act_shape, device=device,
                          dtype=torch.long if discrete else torch.float32)
    masks = torch.ones((args.num_steps, args.num_envs, int(act_space.n) if discrete else 1),
                       device=device, dtype=torch.bool)
    logprobs = torch.zeros((args.num_steps, args.num_envs), device=device)
    rewards = torch.zeros((args.num_steps, args.num_envs), device=device)
    ends = torch.zeros((args.num_steps, args.num_envs), device=device)
    values = torch.zeros((args.num_steps, args.num_envs), device=device)

    def as_tensor(o):
        return torch.as_tensor(np.asarray(o, dtype=np.float32).reshape(args.num_envs, obs_dim), device=device)

    def mask_of(infos):
        if not discrete or not args.use_action_mask or "action_mask" not in infos:
            return None
        return torch.as_tensor(np.asarray(infos["action_mask"], dtype=np.bool_), device=device)

    global_step = 0
    start = time.perf_counter()
    time_env = time_update = 0.0
    recent_returns: deque = deque(maxlen=args.return_window)
    n_episodes = n_success_known = n_success = n_invalid = n_invalid_known = masked_picks = 0
    next_obs, infos = envs.reset(seed=args.seed)
    next_obs, next_mask = as_tensor(next_obs), mask_of(infos)
    uses_mask = next_mask is not None

    for iteration in range(1, num_iterations + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate

        # ---------------------------------------------------------------- rollout
        t0 = time.perf_counter()
        it_returns, it_success = [], []
        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            if next_mask is not None:
                masks[step] = next_mask
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs, mask=next_mask)
            if next_mask is not None:  # by construction never: a masked logit has probability 0
                masked_picks += int((~next_mask.gather(1, action[:, None])).sum())
            values[step], actions[step], logprobs[step] = value, action, logprob

            env_action = action.cpu().numpy()
            if not discrete:
                env_action = np.clip(env_action, act_space.low, act_space.high)
            next_obs_np, reward, terminated, truncated, infos = envs.step(env_action)
            done = np.logical_or(terminated, truncated)
            reward = np.asarray(reward, dtype=np.float32)

            if truncated.any():  # bootstrap a cut-off episode from its real last observation
                idx = np.flatnonzero(truncated)
                final_obs = np.stack([np.asarray(infos["final_obs"][i], dtype=np.float32).reshape(obs_dim) for i in idx])
                with torch.no_grad():
                    v_final = agent.get_value(torch.as_tensor(final_obs, device=device)).cpu().numpy()
                reward[idx] += args.gamma * v_final * (~terminated[idx])
            rewards[step] = torch.as_tensor(reward, device=device)
            ends[step] = torch.as_tensor(done, dtype=torch.float32, device=device)
            next_obs, next_mask = as_tensor(next_obs_np), mask_of(infos)

            # bookkeeping: finished episodes (their info is final_info) and invalid actions
            if done.any():
                final = infos["final_info"]
                ep = final.get("episode", {})
                if "r" in ep:
                    it_returns += [float(r) for r in np.asarray(ep["r"])[done & ep.get("_r", done)]]
                succ = _done_entries(infos, "success", done)
                it_success += [bool(s) for s in succ]
            if "invalid_action" in infos or "invalid_action" in infos.get("final_info", {}):
                live = ~done & infos.get("_invalid_action", np.zeros_like(done))
                inv = list(np.asarray(infos["invalid_action"])[live]) if "invalid_action" in infos else []
                inv += list(_done_entries(infos, "invalid_action", done))
                n_invalid += int(sum(bool(x) for x in inv))
                n_invalid_known += len(inv)
        time_env += time.perf_counter() - t0

        n_episodes += len(it_returns)
        recent_returns.extend(it_returns)
        n_success += sum(it_success)
        n_success_known += len(it_success)

        # ---------------------------------------------------------------- GAE
        t0 = time.perf_counter()
        with torch.no_grad():
            next_value = agent.get_value(next_obs)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0.0
            for t in reversed(range(args.num_steps)):
                following = next_value if t == args.num_steps - 1 else values[t + 1]
                nonterminal = 1.0 - ends[t]
                delta = rewards[t] + args.gamma * following * nonterminal - values[t]
                advantages[t] = lastgaelam = delta + args.gamma * args.gae_lambda * nonterminal * lastgaelam
            returns = advantages + values

        # ---------------------------------------------------------------- update
        b_obs = obs.reshape(-1, obs_dim)
        b_actions = actions.reshape((-1,) + act_shape)
        b_masks = masks.reshape(batch_size, -1) if uses_mask else None
        b_logprobs, b_advantages = logprobs.reshape(-1), advantages.reshape(-1)
        b_returns, b_values = returns.reshape(-1), values.reshape(-1)

        clipfracs = []
        for epoch in range(args.update_epochs):
            perm = torch.randperm(batch_size, device=device)
            for lo in range(0, batch_size, minibatch_size):
                mb = perm[lo:lo + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb], b_actions[mb], mask=None if b_masks is None else b_masks[mb])
                logratio = newlogprob - b_logprobs[mb]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())

                mb_adv = b_advantages[mb]
                if args.norm_adv and len(mb) > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio,
                                    -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)).mean()
                if args.clip_vloss:
                    v_unclipped = (newvalue - b_returns[mb]) ** 2
                    v_clipped = b_values[mb] + torch.clamp(newvalue - b_values[mb], -args.clip_coef, args.clip_coef)
                    v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - b_returns[mb]) ** 2).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
            if args.target_kl is not None and approx_kl > args.target_kl:
                break
        time_update += time.perf_counter() - t0

        if not args.quiet:
            elapsed = time.perf_counter() - start
            line = (f"iter {iteration}/{num_iterations} global_step={global_step} "
                    f"SPS={int(global_step / elapsed)} ")
            line += f"return={np.mean(it_returns):.2f} ({len(it_returns)} ep)" if it_returns else "return=n/a (0 ep)"
            if it_success:
                line += f" success={np.mean(it_success):.2f}"
            line += (f" | pg={pg_loss.item():.3f} v={v_loss.item():.3f} ent={entropy.mean().item():.3f}"
                     f" kl={approx_kl.item():.4f} clipfrac={np.mean(clipfracs):.3f}")
            print(line, flush=True)

    envs.close()
    wall = time.perf_counter() - start
    result = {
        "env_id": args.env_id,
        "total_timesteps": global_step,
        "sps": global_step / wall,
        "wall_s": wall,
        "mean_return_last": float(np.mean(recent_returns)) if recent_returns else None,
        "time_env_s": time_env,
        "time_update_s": time_update,
        "episodes": n_episodes,
        "iterations": num_iterations,
    }
    if n_success_known:
        result["success_rate"] = n_success / n_success_known
    if uses_mask:
        result["masked_picks"] = masked_picks
    if n_invalid_known:
        result["invalid_actions"] = n_invalid
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = train(args)
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
