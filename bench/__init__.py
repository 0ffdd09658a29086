"""Requests per second: Sesame's full download path against the seed's bare route.

Run it with ``python -m bench`` (or ``make bench``); see ``bench/RESULTS.md``.
"""
