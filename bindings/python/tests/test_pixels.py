"""Pixel observations from Python (issue 17): the gymnasium environments in
the "pixels" and "pixels+proprio" modes, the scene's flat layout they come
from, and what a planner decoded from an observation (``Plan.decoded``)."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import telic
from telic.errors import ConfigError, InputError, TelicError

#: The robot's own state in each scene: a part of the state observation.
PROPRIO = {
    "push": ["pusher.x", "pusher.y", "pusher.vx", "pusher.vy"],
    "navigate": None,  # odometry: all of its state observation
}


# Unbounded proprio boxes are what these scenes are; gymnasium's advice to
# normalise them is not an error.
@pytest.mark.filterwarnings("ignore:.*Box.*:UserWarning")
@pytest.mark.parametrize("mode", ["pixels", "pixels+proprio"])
@pytest.mark.parametrize("scene", ["reach", "navigate", "push"])
def test_every_scene_passes_gymnasiums_checks_in_the_pixel_modes(scene, mode):
    env = telic.make(scene, seed=3, obs=mode)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=11)
    assert env.observation_space.contains(obs)
    image_space = env.observation_space if mode == "pixels" else env.observation_space["image"]
    assert isinstance(image_space, spaces.Box)
    assert image_space.shape == (64, 64, 3) and image_space.dtype == np.uint8
    image = obs if mode == "pixels" else obs["image"]
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2, "the scene is drawn, not a blank frame"
    if mode == "pixels":
        assert env.unwrapped.observation_names == []
    else:
        assert isinstance(env.observation_space, spaces.Dict)
        assert set(obs) == {"image", "proprio"}
        assert obs["proprio"].shape == (len(env.unwrapped.observation_names),)
    obs2, _, _, _, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs2) and "worst_margin" in info


@pytest.mark.parametrize("scene", ["navigate", "push"])
def test_proprio_is_the_robots_own_state_and_the_image_is_the_scenes(scene):
    # The scenario file, as it is: a shipped scene's name observed through
    # its camera would be its pixel scenario, whose settings differ.
    scene = f"sim/scenarios/{scene}.toml"
    env = telic.envs.TelicEnv(scene, obs="pixels+proprio")
    obs, _ = env.reset(seed=5)
    state_env = telic.envs.TelicEnv(scene)
    state, _ = state_env.reset(seed=5)
    assert env.observation_names == (PROPRIO[env.scene.name] or state_env.observation_names)
    for name, value in zip(env.observation_names, obs["proprio"]):
        assert value == state[state_env.observation_names.index(name)], name
    # The image is the scene's flat observation, H×W×RGB instead of C×H×W.
    flat = telic.Scene(scene, obs="pixels+proprio").reset(5)
    c, h, w = env.scene.image_shape
    np.testing.assert_array_equal(obs["image"], flat[: c * h * w].reshape(c, h, w).transpose(1, 2, 0))
    np.testing.assert_array_equal(obs["proprio"], flat[c * h * w:])
    # And back: the planner's layout.
    np.testing.assert_array_equal(env.planner_observation(obs), flat)
    # Another state, another image: the robot moves (push: the pusher).
    for _ in range(5):
        obs2, *_ = env.step(env.action_space.high)
    assert not np.array_equal(obs2["image"], obs["image"])


def test_pixels_hold_no_object_state_and_state_mode_is_unchanged():
    pixels = telic.make("push", obs="pixels")
    obs, _ = pixels.reset(seed=2)
    assert isinstance(obs, np.ndarray) and obs.shape == (64, 64, 3)
    state = telic.make("push")
    obs, _ = state.reset(seed=2)
    assert obs.dtype == np.float64 and obs.shape == (8,)
    assert state.unwrapped.observation_mode == "state"
    assert state.unwrapped.observation_names[4:6] == ["box.x", "box.y"]
    np.testing.assert_array_equal(state.unwrapped.planner_observation(obs), obs)
    scene = telic.Scene("push", obs="pixels")
    assert scene.observation_mode == "pixels" and scene.image_shape == (3, 64, 64)
    assert scene.observations == [] and scene.obs_dim == 3 * 64 * 64
    assert len(scene.reset(2)) == scene.obs_dim


def test_bad_observation_modes_are_value_errors_naming_the_modes():
    for make in (
        lambda: telic.make("push", obs="rgb"),
        lambda: telic.envs.TelicEnv("push", obs="depth"),
        lambda: telic.Scene("push", obs="Pixels"),
        lambda: telic.run("push", 1, obs="video"),
    ):
        with pytest.raises(ValueError, match=r"state, pixels or pixels\+proprio") as e:
            make()
        assert isinstance(e.value, ConfigError)
    with pytest.raises(TypeError):
        telic.run("push", 1, obz="pixels")
    env = telic.envs.TelicEnv("push", obs="pixels")
    env.reset(seed=1)
    with pytest.raises(InputError, match=r"\(64, 64, 3\)"):
        env.planner_observation(np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(InputError, match="an \\(H, W, 3\\) image"):
        env.planner_observation({"image": np.zeros((64, 64, 3), np.uint8), "proprio": np.zeros(4)})
    both = telic.envs.TelicEnv("push", obs="pixels+proprio")
    with pytest.raises(InputError, match="a dict with 'image' and 'proprio'"):
        both.planner_observation(np.zeros((64, 64, 3), np.uint8))


def test_a_model_that_reads_no_images_cannot_plan_from_pixels():
    with pytest.raises(TelicError, match="image"):
        telic.run("push", 1, obs="pixels+proprio", model="analytic", max_time=0.2)
    scene = telic.Scene("push", obs="pixels")
    scene.reset(1)
    with pytest.raises(TelicError, match="image"):
        scene.planner("analytic")


def test_a_plan_carries_what_the_model_decoded_from_the_observation():
    model = telic.WorldModel.load("models/push")
    env = telic.make("push", seed=4)
    obs, _ = env.reset()
    planner = env.unwrapped.planner(model, {"samples": 16, "iterations": 1})
    plan = planner.plan(obs)
    np.testing.assert_allclose(plan.decoded, model.readout(model.encode(obs)), rtol=0, atol=1e-9)
    assert plan.decoded.shape == (len(planner.readout_names),)
    truth = env.unwrapped.state()["truth"]
    box_x = plan.decoded[planner.readout_names.index("box.x")]
    assert box_x == pytest.approx(truth["box.x"], abs=0.05), "the learned model sees the box about right"
    assert isinstance(gymnasium.spaces.flatdim(env.observation_space), int)


@pytest.mark.filterwarnings("ignore:.*Box.*:UserWarning")
@pytest.mark.parametrize("mode", ["state", "pixels"])
def test_rgb_array_renders_the_camera_in_every_mode(mode):
    env = telic.make("push", seed=2, obs=mode, render_mode="rgb_array")
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=6)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)
    if mode == "pixels":
        np.testing.assert_array_equal(frame, obs)  # the frame is what the agent sees
    else:
        pixels, _ = telic.make("sim/scenarios/push.toml", obs="pixels").reset(seed=6)
        np.testing.assert_array_equal(frame, pixels)
    assert telic.envs.TelicEnv("push").render() is None
    with pytest.raises(ConfigError, match="rgb_array"):
        telic.envs.TelicEnv("push", render_mode="human")


def test_a_scene_from_a_scenario_file_plans_with_the_scenarios_model():
    """``Scene.planner()`` plans with the scenario's ``model`` (here the
    pixel bundle), and a relative bundle path given from Python is the
    caller's, not the scenario folder's."""
    scene = telic.Scene("sim/scenarios/push_pixels.toml")
    obs = scene.reset(5)
    plan = scene.planner(config={"samples": 16, "iterations": 1}).plan(obs)
    assert np.asarray(plan.action).shape == (2,)
    planner = scene.planner("models/push_pixels", {"samples": 16, "iterations": 1})
    assert np.asarray(planner.plan(obs).action).shape == (2,)
    # "default" observed through the camera is the scene's pixel bundle.
    assert np.asarray(scene.planner("default", {"samples": 16, "iterations": 1}).plan(obs).action).shape == (2,)
    with pytest.raises(TelicError, match="image"):
        scene.planner("models/push")  # the scene's shipped state bundle reads no image
