"""relreps: zero-shot stitching of encoders and policies in visual RL with relative representations.

The package behind the relreps-book chapters. Submodules:

- :mod:`relreps.envs`: colour CarRacing (paper colours, discrete actions), the fast renderer,
  observation preprocessing and vectorised environments.
- :mod:`relreps.anchors`: parallel anchor sets (record a drive once, replay it in every colour).
"""

__version__ = "0.1.0"
