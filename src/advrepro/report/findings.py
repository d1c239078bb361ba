"""Generated text of the paper: the profile's sizes and which thesis findings this run reproduces.

Every number the paper's prose quotes comes from here, computed from the metrics files.
"""
from __future__ import annotations

from .. import paths
from ..attacks import Column, worst_columns
from ..experiments import SCENARIOS, Experiment, models
from ..io import write_text
from ..models import MODELS
from ..spec import evaluation_spec
from . import claims, results
from .checks import VERDICTS, Check, finding, tally

PLAIN_TARGET = 0.85  # the bar for a plain MNIST model on the offline profile
SPECTROGRAM_TARGET = 0.80  # the bar for a plain spectrogram model on the offline profile
CLOSE = 0.05  # "close to plain": within 5 accuracy points


def _exp(model: str, scenario: str, dataset: str = "mnist") -> Experiment:
    return Experiment(dataset, model, SCENARIOS[scenario])


def _pct(*values: float) -> str:
    return " vs.\\ ".join(f"{100 * v:.1f}" for v in values) + "\\,\\%"


def _pgd(params: dict, dataset: str, pick=min) -> Column:
    """The robustness column the findings compare: the per-sample worst case over every attack, at the
    dataset's smallest (or, pick=max, largest) evaluation epsilon."""
    return pick(worst_columns(evaluation_spec(params, dataset)), key=lambda c: c.epsilon)


def mnist_checks(params: dict) -> list[Check]:
    """The checks of the thesis's MNIST findings, per model."""
    small_col, large_col = _pgd(params, "mnist"), _pgd(params, "mnist", max)
    small, large = small_col.key, large_col.key
    checks = []
    for m in models(params, "mnist"):
        plain = results.metrics(params, _exp(m, "plain"))["accuracy"]
        robust = results.metrics(params, _exp(m, "alg1"))["accuracy"]
        name = MODELS[m].label
        checks.append(finding(f"{name}: plain training reaches at least {100 * PLAIN_TARGET:.0f}\\,\\% "
                              "natural accuracy",
                       plain["plain"] >= PLAIN_TARGET, f"{100 * plain['plain']:.1f}\\,\\%"))
        checks.append(finding(f"{name}: Algorithm~1 raises {small_col.text} accuracy above "
                              "plain training",
                       robust[small] > plain[small],
                       f"{100 * robust[small]:.1f} vs.\\ {100 * plain[small]:.1f}\\,\\%"))
        checks.append(finding(f"{name}: Algorithm~1 raises {large_col.text} accuracy above "
                              "plain training",
                       robust[large] > plain[large],
                       f"{100 * robust[large]:.1f} vs.\\ {100 * plain[large]:.1f}\\,\\%"))
        checks.append(finding(f"{name}: Algorithm~1 gives no advantage against the spatial attack "
                       "(within 10 points of plain)", robust["spatial"] <= plain["spatial"] + 0.10,
                       f"{100 * robust['spatial']:.1f} vs.\\ {100 * plain['spatial']:.1f}\\,\\%"))
    return checks


def speech_checks(params: dict) -> list[Check]:
    """The checks of the thesis's Speech Commands findings (section 5.3), per model."""
    checks = []
    pgd_col = _pgd(params, "speech-meldb")
    pgd, pgd_label = pgd_col.key, pgd_col.text
    for m in models(params, "speech-meldb"):
        acc = {s: results.metrics(params, _exp(m, s, "speech-meldb"))["accuracy"] for s in ("plain", "alg1", "alg2")}
        mel = results.metrics(params, _exp(m, "plain", "speech-mel"))["accuracy"]
        name = MODELS[m].label
        checks.append(finding(f"{name}: plain training on Mel+dB reaches at least {100 * SPECTROGRAM_TARGET:.0f}\\,\\% "
                       "natural accuracy", acc["plain"]["plain"] >= SPECTROGRAM_TARGET, _pct(acc["plain"]["plain"])))
        checks.append(finding(f"{name}: plain training on the Mel spectrogram alone reaches at least "
                       f"{100 * SPECTROGRAM_TARGET:.0f}\\,\\%", mel["plain"] >= SPECTROGRAM_TARGET, _pct(mel["plain"])))
        checks.append(finding(f"{name}: the Mel spectrogram alone does worse than Mel+dB",
                       mel["plain"] < acc["plain"]["plain"], _pct(mel["plain"], acc["plain"]["plain"])))
        if m in models(params, "speech-raw"):
            raw = results.metrics(params, _exp(m, "plain", "speech-raw"))["accuracy"]
            checks.append(finding(f"{name}: Mel+dB beats the raw waveform on natural accuracy",
                           acc["plain"]["plain"] > raw["plain"], _pct(acc["plain"]["plain"], raw["plain"])))
        checks.append(finding(f"{name}: Algorithm~1 on Mel+dB trades natural accuracy (lower than plain) for "
                       f"{pgd_label} accuracy (higher than plain)",
                       acc["alg1"]["plain"] < acc["plain"]["plain"] and acc["alg1"][pgd] > acc["plain"][pgd],
                       f"{_pct(acc['alg1']['plain'], acc['plain']['plain'])}; "
                       f"{_pct(acc['alg1'][pgd], acc['plain'][pgd])}"))
        checks.append(finding(f"{name}: Algorithm~2 on Mel+dB keeps natural accuracy within {100 * CLOSE:.0f} "
                              "points of plain",
                       acc["alg2"]["plain"] >= acc["plain"]["plain"] - CLOSE,
                       _pct(acc["alg2"]["plain"], acc["plain"]["plain"])))
        checks.append(finding(f"{name}: Algorithm~2 keeps more natural accuracy than Algorithm~1 on Mel+dB",
                       acc["alg2"]["plain"] > acc["alg1"]["plain"], _pct(acc["alg2"]["plain"], acc["alg1"]["plain"])))
    return checks


def urban_checks(params: dict) -> list[Check]:
    """The checks of the thesis's UrbanSound8K findings (section 5.4, appendix A.4), per model.
    Binary labels: a model that always answers "benign" scores the benign share of the test clips."""
    checks = []
    raw_col, pgd_col = _pgd(params, "urban-raw"), _pgd(params, "urban-mel")
    raw_pgd, pgd, pgd_label = raw_col.key, pgd_col.key, pgd_col.text
    for m in models(params, "urban-mel"):
        name = MODELS[m].label
        mel = {s: results.metrics(params, _exp(m, s, "urban-mel"))["accuracy"] for s in ("plain", "alg1", "alg2")}
        db = {s: results.metrics(params, _exp(m, s, "urban-meldb"))["accuracy"] for s in ("plain", "alg1", "alg2")}
        if m in models(params, "urban-raw"):
            raw = {s: results.metrics(params, _exp(m, s, "urban-raw"))["accuracy"] for s in ("plain", "alg1")}
            checks.append(finding(f"{name}: on the raw waveform Algorithm~1 does not raise "
                           f"{raw_col.text} accuracy (Table 5.8)",
                           raw["alg1"][raw_pgd] <= raw["plain"][raw_pgd],
                           _pct(raw["alg1"][raw_pgd], raw["plain"][raw_pgd])))
        checks.append(finding(f"{name}: on the Mel spectrogram Algorithm~1 raises {pgd_label} accuracy (Table 5.9)",
                       mel["alg1"][pgd] > mel["plain"][pgd], _pct(mel["alg1"][pgd], mel["plain"][pgd])))
        checks.append(finding(rf"{name}: \dots\ keeping natural accuracy within {100 * CLOSE:.0f} points of plain",
                       mel["alg1"]["plain"] >= mel["plain"]["plain"] - CLOSE,
                       _pct(mel["alg1"]["plain"], mel["plain"]["plain"])))
        lo, hi = sorted((mel["plain"][pgd], mel["alg1"][pgd]))
        # Where plain and Algorithm 1 score the same, "between" says nothing: not comparable (None).
        checks.append(finding(f"{name}: Algorithm~2's {pgd_label} accuracy lies between plain training's and "
                       "Algorithm~1's (Table 5.10)", lo <= mel["alg2"][pgd] <= hi if hi > lo else None,
                       rf"{100 * mel['alg2'][pgd]:.1f} in [{100 * lo:.1f}, {100 * hi:.1f}]\,\%"))
        checks.append(finding(f"{name}: on Mel+dB, Algorithms 1 and 2 end within {100 * CLOSE:.0f} points of each "
                       f"other, natural and {pgd_label} (Table A.2)",
                       abs(db["alg1"]["plain"] - db["alg2"]["plain"]) <= CLOSE
                       and abs(db["alg1"][pgd] - db["alg2"][pgd]) <= CLOSE,
                       f"{_pct(db['alg1']['plain'], db['alg2']['plain'])}; {_pct(db['alg1'][pgd], db['alg2'][pgd])}"))
    return checks


def _findings_table(macro: str, section: str, checks: list[Check]) -> list[str]:
    lines = [f"\\newcommand{{\\{macro}}}{{%", "\\begin{tabular}{p{0.55\\linewidth}lr}", "\\toprule",
             f"Finding of the thesis ({section}) & Verdict & This run \\\\", "\\midrule"]
    for c in checks:
        lines.append(f"{c.statement} & {VERDICTS[c.verdict]} & {c.ours} \\\\")
    return lines + ["\\bottomrule", "\\end{tabular}}", f"\\newcommand{{\\{macro}count}}{{{tally(checks)}}}"]


def _speech_macros(params: dict) -> list[str]:
    sp = params["speech"]
    d, c, f = sp["data"], sp["data"]["corpus"], sp["features"]
    return [f"\\newcommand{{\\speechsource}}{{{d['source']}}}",
            f"\\newcommand{{\\speechsplit}}{{{d['split']}}}",
            f"\\newcommand{{\\speechspeakers}}{{{c['speakers']}}}",
            f"\\newcommand{{\\speechaccents}}{{{len(c['accents'])}}}",
            f"\\newcommand{{\\speechclips}}{{{c['speakers'] * c['takes'] * 10}}}",
            f"\\newcommand{{\\speechsnr}}{{{c['snr_db'][0]:g}--{c['snr_db'][1]:g}}}",
            f"\\newcommand{{\\speechrawrate}}{{{f['raw_rate']}}}",
            f"\\newcommand{{\\speechmels}}{{{f['n_mels']}}}",
            f"\\newcommand{{\\speechframes}}{{{results.spectrogram_frames(sp)}}}",
            f"\\newcommand{{\\speechepsilon}}{{{sp['spectrogram']['robust']['epsilon']:g}}}",
            f"\\newcommand{{\\speechramp}}{{{sp['spectrogram']['robust']['epsilon_warmup']:g}}}",
            f"\\newcommand{{\\speechK}}{{{sp['spectrogram']['robust']['K']}}}",
            f"\\newcommand{{\\speechstep}}{{{sp['spectrogram']['robust']['stepsize']:g}}}",
            f"\\newcommand{{\\speechhop}}{{{f['hop_length']}}}",
            f"\\newcommand{{\\speechviews}}{{{sp['augment']['views']}}}",
            f"\\newcommand{{\\speechepochsraw}}{{{sp['raw']['train']['epochs']}}}",
            f"\\newcommand{{\\speechepochsspec}}{{{sp['spectrogram']['train']['epochs']}}}"]


def _urban_macros(params: dict) -> list[str]:
    u = params["urban"]
    d, c, f = u["data"], u["data"]["corpus"], u["features"]
    return [f"\\newcommand{{\\urbansource}}{{{d['source']}}}",
            f"\\newcommand{{\\urbanclips}}{{{10 * c['clips_per_class']}}}",
            f"\\newcommand{{\\urbantestfolds}}{{{', '.join(map(str, d['test_folds']))}}}",
            f"\\newcommand{{\\urbanrate}}{{{d['sample_rate']}}}",
            f"\\newcommand{{\\urbanduration}}{{{d['duration']:g}}}",
            f"\\newcommand{{\\urbanrawrate}}{{{f['raw_rate']}}}",
            f"\\newcommand{{\\urbanmels}}{{{f['n_mels']}}}",
            f"\\newcommand{{\\urbanframes}}{{{results.spectrogram_frames(u)}}}",
            f"\\newcommand{{\\urbanepochs}}{{{u['spectrogram']['train']['epochs']}}}",
            f"\\newcommand{{\\urbanepsilon}}{{{u['spectrogram']['robust']['epsilon']:g}}}",
            f"\\newcommand{{\\urbanK}}{{{u['spectrogram']['robust']['K']}}}"]


def _gtsrb_macros(params: dict) -> list[str]:
    g = params["gtsrb"]
    d, patch = g["data"], g["model"]["patch"]
    synthetic = d["source"] == "synthetic"
    return [f"\\newcommand{{\\gtsrbsource}}{{{d['source']}}}",
            f"\\newcommand{{\\gtsrbtrain}}{{{results.training_images(d)}}}",
            f"\\newcommand{{\\gtsrbtest}}{{{43 * d['test_per_class'] if synthetic else 'all'}}}",
            f"\\newcommand{{\\gtsrbsize}}{{{d['image_size']}}}",
            f"\\newcommand{{\\gtsrbpatch}}{{{patch}}}",
            f"\\newcommand{{\\gtsrbseqlen}}{{{(d['image_size'] // patch) ** 2}}}",
            f"\\newcommand{{\\gtsrbepochs}}{{{g['train']['epochs']}}}",
            f"\\newcommand{{\\gtsrbK}}{{{g['robust']['K']}}}",
            f"\\newcommand{{\\gtsrbepsilon}}{{{g['robust']['epsilon']:g}}}"]


def render(params: dict) -> str:
    d = params["mnist"]["data"]
    patch = params["mnist"]["model"]["patch"]
    lines = ["% Generated by `advrepro findings` from results/metrics; do not edit.",
             f"\\newcommand{{\\profilename}}{{{params['profile']}}}",
             f"\\newcommand{{\\mnistsize}}{{{d['image_size']}}}",
             f"\\newcommand{{\\mnistpatch}}{{{patch}}}",
             f"\\newcommand{{\\mnistseqlen}}{{{(d['image_size'] // patch) ** 2}}}",
             f"\\newcommand{{\\mnisttrain}}{{{d['n_train']}}}",
             f"\\newcommand{{\\mnisttest}}{{{d['n_test']}}}",
             f"\\newcommand{{\\mnistsource}}{{{d['source']}}}",
             f"\\newcommand{{\\trainepsilon}}{{{params['mnist']['robust']['epsilon']:g}}}"]
    lines += _gtsrb_macros(params) + _speech_macros(params) + _urban_macros(params)
    lines += _findings_table("mnistfindings", "section 5.1", mnist_checks(params))
    lines += _findings_table("speechfindings", "section 5.3", speech_checks(params))
    lines += _findings_table("urbanfindings", "section 5.4", urban_checks(params))
    lines += claims.render(params)
    return "\n".join(lines + [""])


def write_findings(params: dict) -> None:
    write_text(paths.FINDINGS, render(params))
