"""Datasets, joint transforms and synthetic data for dense prediction."""
