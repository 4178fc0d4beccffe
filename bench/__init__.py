"""Benchmarks of the billing pipeline (``make bench`` = ``python -m bench``); see ``bench/__main__.py``."""
