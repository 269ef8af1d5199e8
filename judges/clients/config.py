"""Judge configuration: a model endpoint plus the judging mode and template.

:class:`JudgeConfig` is an :class:`llm.config.ModelConfig` (endpoint, decoding, limits,
prices; the API key stays in the environment) with what makes it a judge: the ``mode``
and the template overrides. Its :meth:`~llm.config.ModelConfig.version_hash` covers
everything that changes verdicts (endpoint, model, mode, the resolved template texts,
decoding parameters, logprobs) and nothing that does not (secrets, timeouts, retries,
rate limits, concurrency, prices); it keys the cached judgments, so its output must
never change for the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from judges import prompts
from llm.config import ModelConfig


@dataclass(frozen=True)
class JudgeConfig(ModelConfig):
    """Everything needed to call one LLM judge and price the call.

    Attributes
    ----------
    mode : str
        ``pairwise`` | ``pairwise_mtbench`` | ``listwise`` | ``single`` | ``single_100``
        (:data:`judges.prompts.MODES`).
    system_prompt, template : str
        Overrides for the built-in template of ``mode`` (see
        :func:`judges.prompts.custom_template`); empty means built-in.

    The endpoint, decoding, limit and price fields are those of
    :class:`llm.config.ModelConfig`.
    """

    mode: str = prompts.PAIRWISE
    system_prompt: str = ""
    template: str = ""

    def __post_init__(self):
        super().__post_init__()
        if self.mode not in prompts.MODES:
            raise ValueError(f"mode: expected one of {', '.join(prompts.MODES)}, got {self.mode!r}")

    @property
    def judge_template(self) -> prompts.JudgeTemplate:
        """The template this judge renders (built-in for ``mode`` unless overridden)."""
        return prompts.custom_template(self.mode, self.system_prompt, self.template)

    def versioned(self) -> dict:
        """The fields that change verdicts: the model's, plus the mode and template text."""
        return {**super().versioned(), "mode": self.mode, "template": self.judge_template.text()}
