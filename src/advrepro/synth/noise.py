"""Background noise of the synthesized audio corpora (synth/urban.py, synth/speech.py)."""
from __future__ import annotations

import numpy as np


def colored_noise(mix: dict, rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS noise [n] whose power the proportions mix["white" | "pink" | "brown"] share among
    white, pink and brown noise (power spectra 1, 1/f, 1/f^2): a sum of independent Gaussian noises
    is Gaussian with the summed spectrum, so one white noise shaped in the frequency domain does."""
    f = np.fft.rfftfreq(n)[1:]  # without DC: no offset
    psd = sum(mix[c] * f ** -a / np.mean(f ** -a) for c, a in (("white", 0), ("pink", 1), ("brown", 2)))
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[0] = 0.0
    spec[1:] *= np.sqrt(psd)
    noise = np.fft.irfft(spec, n)
    return noise / noise.std()
