"""The conditions each image is run under: conditional ones for TDCL, one for NDCR.

Supervised: one text prompt per class (``prompt_template`` with ``{class}`` replaced by the
class name; the name's underscores become spaces), and the denoising prompt (``""``, the
reference code's null prompt, by default). Self-supervised: the positive prompt ("a photo of a
similar object") first, then ``num_negatives`` negatives from a vocabulary file, and
the self-supervised denoising prompt. With the ``ddpm`` backbone the class label is
the prompt and the null class (index ``C``) the denoising one.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from feddiff.features.settings import FeatureSettings

VOCABULARY = "vocabulary.txt"


@dataclass(frozen=True)
class Conditions:
    """``conditional[k]`` and ``denoise``: prompts (text) or class indices (DDPM)."""

    conditional: tuple[str | int, ...]
    denoise: str | int
    names: tuple[str, ...]

    @property
    def all(self) -> tuple[str | int, ...]:
        """Every condition, the denoising one last (the order the UNet rows use)."""
        return (*self.conditional, self.denoise)


def read_vocabulary(path: str | None) -> list[str]:
    """Words of a vocabulary file (the package's own when ``path`` is None)."""
    if path is None:
        text = resources.files("feddiff.features").joinpath(VOCABULARY).read_text()
    else:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"features.vocabulary: file not found: {file}")
        text = file.read_text()
    words = [line.strip() for line in text.splitlines()]
    return [w for w in words if w and not w.startswith("#")]


def class_prompt(template: str, name: str) -> str:
    return template.replace("{class}", name.replace("_", " "))


def build_conditions(settings: FeatureSettings, class_names: list[str]) -> Conditions:
    """The conditions of ``settings`` for a dataset with ``class_names``."""
    if settings.backbone == "ddpm":
        labels = tuple(range(len(class_names)))
        return Conditions(labels, len(class_names), (*class_names, "<null class>"))
    if settings.mode == "supervised":
        prompts = tuple(class_prompt(settings.prompt_template, c) for c in class_names)
        return Conditions(prompts, settings.denoise_prompt, (*prompts, settings.denoise_prompt))
    words = read_vocabulary(settings.vocabulary)
    if len(words) < settings.num_negatives:
        raise ValueError(
            f"features.num_negatives is {settings.num_negatives} but the vocabulary has only "
            f"{len(words)} words"
        )
    negatives = tuple(
        class_prompt(settings.prompt_template, w) for w in words[: settings.num_negatives]
    )
    conditional = (settings.positive_prompt, *negatives)
    denoise = settings.self_supervised_denoise_prompt
    return Conditions(conditional, denoise, (*conditional, denoise))
