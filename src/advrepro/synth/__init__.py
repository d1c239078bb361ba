"""Offline stand-ins for the datasets that cannot be downloaded here: generators, not loaders.

Each module writes one dataset's upstream directory layout into a given directory, and nothing else:
signs.py the GTSRB tree torchvision reads, urban.py the UrbanSound8K tree, speech.py the Speech
Commands tree (spoken with eSpeak NG, espeak.py); noise.py is their background noise. The real
loaders in data/ call them for the offline profile (checksums, corpus.json and the atomic install are
data/corpus.py's) and read what they wrote exactly as they read the real data.
"""
