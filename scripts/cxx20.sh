#!/usr/bin/env bash
# Compiler wrapper for building mmcv 2.1.0 against torch >= 2.14: mmcv's setup.py
# appends -std=c++17 after CFLAGS, but torch's headers need C++20, so the flag
# must come last. -g0 drops debug info (about 2x faster build, 80 MB -> 2 MB).
exec "${ASTRODET_REAL_CXX:-g++}" "$@" -std=c++20 -g0
