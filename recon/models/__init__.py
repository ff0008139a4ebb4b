"""Learned models, one module each, the blocks they share, and shipped weights turned into reconstructors."""
