"""Tests of the analysis layer: frames, stats, compare, power, history and their CLI verbs."""
