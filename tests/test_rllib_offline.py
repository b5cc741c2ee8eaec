"""Behaviour cloning with RLlib 2.60's BC (new API stack) from omnigym demonstrations."""
from __future__ import annotations

import gc
import math

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.rllib")
torch = pytest.importorskip("torch")

from omnigym.episodes import Episode  # noqa: E402
from omnigym.rllib.offline import (  # noqa: E402
    COLUMNS,
    bc_config,
    episodes_to_rllib_offline,
    episodes_to_rllib_table,
    greedy_action,
    mask_in_observation,
)
from omnigym.rllib.inference import trained_module  # noqa: E402
from omnigym.rollout import rollout  # noqa: E402

HOLD = "household/Hold-v0"


@pytest.fixture(scope="module")
def ray_session():
    # address="local": always start a private instance. A bare ray.init()
    # would attach to any other Ray cluster running on this machine (and then
    # refuse num_cpus).
    started = not ray.is_initialized()
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             ignore_reinit_error=True, log_to_driver=False)
    yield
    # Close Ray Data iterators left in stopped algorithms while Ray still runs.
    gc.collect()
    if started:
        ray.shutdown()


# --------------------------------------------------------------------------
# Demonstrations
# --------------------------------------------------------------------------
def cartpole_controller(obs) -> int:
    """Push towards where the pole is falling: balances CartPole for 500 steps."""
    return int(obs[2] + 0.5 * obs[3] > 0)


def cartpole_episodes(seeds, policy=cartpole_controller) -> list[Episode]:
    env = gym.make("CartPole-v1")
    episodes = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        episode = Episode.from_reset(obs, info, env_id="CartPole-v1", seed=seed)
        while True:
            action = policy(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            episode.append_step(obs, action, reward, terminated, truncated, info)
            if terminated or truncated:
                break
        episodes.append(episode)
    env.close()
    return episodes


def cartpole_returns(act, seeds) -> list[float]:
    env = gym.make("CartPole-v1")
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total = 0.0
        while True:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += reward
            if terminated or truncated:
                break
        returns.append(total)
    env.close()
    return returns


def demo_nll(module, episodes) -> float:
    """Mean negative log-likelihood of the demonstrated actions under ``module``."""
    obs = torch.as_tensor(np.stack([o for e in episodes for o in e.observations[:-1]]))
    actions = torch.as_tensor([a for e in episodes for a in e.actions])
    with torch.no_grad():
        logits = module.forward_inference({"obs": obs})["action_dist_inputs"]
    logp = torch.log_softmax(logits, dim=-1).gather(1, actions[:, None])
    return float(-logp.mean())


# --------------------------------------------------------------------------
# Writing (no Ray cluster needed)
# --------------------------------------------------------------------------
def test_table_layout_and_errors(tmp_path):
    episodes = cartpole_episodes([0, 1])
    n = sum(e.length for e in episodes)
    table = episodes_to_rllib_table(episodes, eps_id_prefix="demo")
    assert tuple(table.column_names) == COLUMNS
    assert table.num_rows == n
    assert table.column("t").to_pylist()[:3] == [0, 1, 2]
    assert table.column("eps_id").to_pylist()[0] == "demo-000000"
    # Flags are the episodes' own, step by step (CartPole ends truncated at 500).
    assert table.column("terminateds").to_pylist() == [f for e in episodes for f in e.terminated]
    assert table.column("truncateds").to_pylist() == [f for e in episodes for f in e.truncated]
    assert sum(table.column("truncateds").to_pylist()) == 2
    assert table.column("actions").to_pylist() == [a for e in episodes for a in e.actions]
    np.testing.assert_array_equal(np.stack(table.column("new_obs").to_numpy(zero_copy_only=False)[:2]),
                                  np.stack(episodes[0].observations[1:3]))

    # Observations the RLlib pipeline cannot decode are refused with a hint.
    with pytest.raises(TypeError, match="obs_transform"):
        episodes_to_rllib_table(episodes, obs_transform=lambda o, i: (o, o))
    with pytest.raises(ValueError, match="no transitions"):
        episodes_to_rllib_table([Episode.from_reset(np.zeros(4, np.float32), {}, env_id="x")])

    # Files accumulate in the directory, each one numbered; shuffling keeps every row.
    path = episodes_to_rllib_offline(episodes, tmp_path / "data")
    episodes_to_rllib_offline(episodes, tmp_path / "data", shuffle_seed=0, max_rows_per_file=400)
    names = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert names[0] == "part-000000.parquet" and len(names) == 1 + math.ceil(n / 400)
    assert pq.read_table(path).num_rows == 2 * n


def test_bc_config_rejects_unknown_settings(tmp_path):
    with pytest.raises(TypeError, match="unknown setting 'lernrate'"):
        bc_config("CartPole-v1", str(tmp_path), lernrate=1.0)
    config = bc_config("CartPole-v1", str(tmp_path), train_batch_size_per_learner=64,
                       evaluation_interval=3, map_batches_kwargs={"num_cpus": 1})
    assert config.train_batch_size_per_learner == 64
    assert config.evaluation_interval == 3
    assert config.map_batches_kwargs == {"num_cpus": 1}
    assert config.num_learners == 0 and config.dataset_num_iters_per_learner == 10
    assert config.observation_space.shape == (4,) and config.action_space.n == 2


# --------------------------------------------------------------------------
# (1) CartPole: BC learns the scripted controller
# --------------------------------------------------------------------------
def test_bc_cartpole_learns_from_demonstrations(ray_session, tmp_path):
    demos = cartpole_episodes(range(10))
    assert all(e.total_return == 500.0 for e in demos)  # the controller balances
    path = episodes_to_rllib_offline(demos, tmp_path / "cartpole", shuffle_seed=0)

    algo = bc_config("CartPole-v1", path, lr=3e-3, train_batch_size_per_learner=256,
                     dataset_num_iters_per_learner=20, seed=0).build_algo()
    try:
        nll_before = demo_nll(trained_module(algo), demos)
        losses = []
        for _ in range(6):
            result = algo.train()
            losses.append(result["learners"]["default_policy"]["policy_loss"])
        module = trained_module(algo)
    finally:
        algo.stop()

    nll_after = demo_nll(module, demos)
    assert all(math.isfinite(x) for x in losses)
    assert nll_before > 0.6  # untrained: about log(2)
    assert nll_after < 0.75 * nll_before, (nll_before, nll_after, losses)
    assert np.mean(losses[-3:]) < nll_before, losses

    seeds = range(1000, 1010)
    bc_return = float(np.mean(cartpole_returns(lambda o: greedy_action(module, o), seeds)))
    rng = np.random.default_rng(0)
    random_return = float(np.mean(cartpole_returns(lambda o: int(rng.integers(2)), seeds)))
    print(f"BC loss {losses}, demo NLL {nll_before:.3f} -> {nll_after:.3f}, "
          f"greedy return {bc_return:.1f} vs random {random_return:.1f}")
    assert random_return < 50
    assert bc_return > 100, (bc_return, losses)


# --------------------------------------------------------------------------
# (2) Household: masked Dict observations written and read back
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hold_demos():
    episodes = rollout("expert", HOLD, range(12), env_kwargs={"mode": "vector"}, progress=False)
    assert all(e.success for e in episodes)
    return episodes


def test_household_dict_observations_round_trip(ray_session, hold_demos, tmp_path):
    n = sum(e.length for e in hold_demos)
    path = episodes_to_rllib_offline(hold_demos, tmp_path / "hold", obs_transform=mask_in_observation)
    obs_dim = hold_demos[0].observations[0].shape[0]
    n_actions = hold_demos[0].infos[0]["action_mask"].shape[0]

    # pyarrow (Ray's tensor extension type is registered once Ray is imported).
    table = pq.read_table(path)
    assert tuple(table.column_names) == COLUMNS and table.num_rows == n
    assert pa.types.is_struct(table.schema.field("obs").type)
    assert {f.name for f in table.schema.field("obs").type} == {"observations", "action_mask"}
    assert len(table.column("eps_id").unique()) == len(hold_demos)

    # ray.data, as RLlib's OfflineData reads it (read_parquet, numpy batches).
    ds = ray.data.read_parquet(path)
    assert ds.count() == n
    batch = ds.take_batch(n)
    assert set(batch) == set(COLUMNS)
    expected_actions = [a for e in hold_demos for a in e.actions]
    assert batch["actions"].dtype == np.int64 and batch["actions"].tolist() == expected_actions
    assert int(batch["terminateds"].sum()) == len(hold_demos)
    row = 0
    for episode in hold_demos:
        for t in range(episode.length):
            obs, new_obs = batch["obs"][row], batch["new_obs"][row]
            assert obs["observations"].dtype == np.float32 and obs["observations"].shape == (obs_dim,)
            assert obs["action_mask"].dtype == np.float32 and obs["action_mask"].shape == (n_actions,)
            np.testing.assert_array_equal(obs["observations"], episode.observations[t])
            np.testing.assert_array_equal(obs["action_mask"], episode.infos[t]["action_mask"])
            np.testing.assert_array_equal(new_obs["observations"], episode.observations[t + 1])
            assert obs["action_mask"][episode.actions[t]] == 1.0  # the expert picks admissible actions
            row += 1


def test_household_bc_trains_on_masked_dict_observations(ray_session, hold_demos, tmp_path):
    """End to end through BC's OfflinePreLearner with omnigym's masked RLModule."""
    module_mod = pytest.importorskip("omnigym.rllib.module")
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    path = episodes_to_rllib_offline(hold_demos, tmp_path / "hold", obs_transform=mask_in_observation,
                                     shuffle_seed=0)
    config = bc_config(HOLD, path, env_config={"mode": "vector"}, lr=3e-3,
                       train_batch_size_per_learner=32, dataset_num_iters_per_learner=5,
                       rl_module_spec=RLModuleSpec(module_class=module_mod.OmnigymTorchRLModule,
                                                   model_config={"policy": "mlp"}))
    assert isinstance(config.observation_space, gym.spaces.Dict)
    algo = config.build_algo()
    try:
        losses = [algo.train()["learners"]["default_policy"]["policy_loss"] for _ in range(4)]
        module = trained_module(algo)
    finally:
        algo.stop()
    print(f"household BC loss {losses}")
    assert losses[-1] < 0.5 * losses[0], losses
    # The trained policy imitates the planner on its own demonstrations.
    episode = hold_demos[0]
    obs = mask_in_observation(episode.observations[0], episode.infos[0])
    assert greedy_action(module, obs) == episode.actions[0]
