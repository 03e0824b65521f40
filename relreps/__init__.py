"""relreps: zero-shot stitching of encoders and policies in visual RL with relative representations.

The package behind the relreps-book chapters. Submodules:

- :mod:`relreps.envs`: colour CarRacing (paper colours, discrete actions), the fast renderer,
  observation preprocessing and vectorised environments.
- :mod:`relreps.anchors`: parallel anchor sets (record a drive once, replay it in every colour).

Importing ``relreps`` registers the gymnasium id ``relreps/CarRacing-v0`` (the environment module
itself is imported only when an environment is made).
"""

import gymnasium as _gym

__version__ = "0.1.0"

if "relreps/CarRacing-v0" not in _gym.registry:
    _gym.register(
        id="relreps/CarRacing-v0",
        entry_point="relreps.envs:ColorCarRacing",
        max_episode_steps=1000,
    )
