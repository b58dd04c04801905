"""modelnotes: how neural networks are put together and what they cost.

The package behind the book: a catalogue of models built from configs
(:mod:`modelnotes.catalogue`), structure inspection (:mod:`modelnotes.structure`),
diagrams drawn from configs (:mod:`modelnotes.diagrams`), measurements on the GPU
(:mod:`modelnotes.measure`), build provenance
(:mod:`modelnotes.provenance`) and the ``modelnotes`` command (:mod:`modelnotes.cli`).
"""

import os

# Models are built from configs; no code path may reach for the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
