"""Generative design: new compositions from a recurrent language model, a GAN and a
reinforcement-learning agent, with the baselines and metrics that judge them.

Submodules load on first use (torch is imported only by the networks).
"""

from __future__ import annotations
