"""A model card written from recorded measurements, in huggingface_hub's maintained template.

The sections are the template's (Mitchell et al., 2019, as the Hugging Face Hub keeps them);
the course fills the ones it has evidence for. Every number in the card's text comes from an
:class:`~utils.governance.evidence.Measurement` and carries its provenance, ``0.967 [run
1a2b3c4d]``: the first 8 hex digits of the audit-trail entry that recorded it. None is typed
in. :func:`untraceable` finds the numbers of a card that do not match an evaluation entry of
the trail, which is how a reviewer (or the lab's check) audits a card. Renders offline
(huggingface_hub's bundled template, Jinja2). Taught in 09_governance_and_audit.
"""
from __future__ import annotations

import re
from typing import Iterable

from utils import validation as v

#: A traced number as the card prints it.
TRACED = re.compile(r"(-?\d+(?:\.\d+)?) \[run ([0-9a-f]{8})\]")
#: A decimal number that is a result (a setting is written `name=value`, e.g. `eps=0.1`, and a
#: link holds numbers after a slash): the card should hold no untraced one.
DECIMAL = re.compile(r"(?<![\w./=-])\d+\.\d+(?!\.?\d)(?![A-Za-z_])")


def traced(m) -> str:
    """A measurement as the card prints it: value and run (taught in 09_governance_and_audit)."""
    return m.short()


def performance_section(evidence, candidate: str) -> str:
    """The card's "Results": clean and robust accuracy of one candidate (taught in 09_governance_and_audit)."""
    clean, robust = evidence[f"clean_accuracy@{candidate}"], evidence[f"robust_accuracy@{candidate}"]
    return (f"- Clean test accuracy: {traced(clean)} on {clean.n} held-out digits.\n"
            f"- Robust accuracy under {robust.method}: {traced(robust)} on the first {robust.n} test digits "
            f"(lesson 04's attack; an upper bound: a stronger attack can only lower it).")


def security_section(evidence, candidate: str) -> str:
    """The card's "Model Examination": backdoor scan and membership leak of one candidate, and the
    course-wide findings on poisoning, extraction and privacy (taught in 09_governance_and_audit)."""
    flagged, tpr = evidence[f"backdoor_flagged@{candidate}"], evidence[f"membership_tpr@{candidate}"]
    lines = [f"- Backdoor scan ({flagged.method}): share of the training set flagged {traced(flagged)} "
             f"of {flagged.n} examples.",
             f"- Membership inference ({tpr.method}) on its training set against unseen digits: "
             f"TPR {traced(tpr)}."]
    if "backdoor_asr" in evidence.measurements:
        lines.append(f"- Poisoning finding (course-wide): a 5% BadNets poison reached an attack success rate of "
                     f"{traced(evidence['backdoor_asr'])}; after cleaning with activation clustering and "
                     f"retraining {traced(evidence['backdoor_asr_cleaned'])}.")
    if "extraction_fidelity" in evidence.measurements:
        lines.append(f"- Extraction finding: a copy trained on {_queries(evidence['extraction_fidelity'])} answers agrees "
                     f"with the model on {traced(evidence['extraction_fidelity'])} of test digits with full "
                     f"probabilities and {traced(evidence['extraction_fidelity_label_only'])} with labels only.")
    if "membership_tpr_dp" in evidence.measurements:
        lines.append(f"- Privacy finding: on a deliberately overfit model the attack's TPR is "
                     f"{traced(evidence['membership_tpr'])}; with DP-SGD {traced(evidence['membership_tpr_dp'])}.")
    return "\n".join(lines)


def _queries(m) -> str:
    """The query count of an extraction measurement, from its method text."""
    found = re.search(r"on (\d+) answers", m.method)
    return found.group(1) if found else "the"


def model_card(evidence, candidate: str, *, name: str = "modelsec-digits-mlp", version: str | None = None,
               trail_head: str | None = None, extra: dict[str, str] | None = None):
    """A :class:`huggingface_hub.ModelCard` for one release candidate (taught in 09_governance_and_audit).

    Args:
        evidence: an :class:`~utils.governance.evidence.Evidence` holding the candidate's measurements.
        candidate: e.g. ``"v2"``.
        trail_head: the audit trail's last hash, printed so the card names the trail it rests on.
        extra: template fields to set or override (e.g. ``{"direct_use": "..."}``).

    The metadata block carries the same numbers as ``model-index`` results (Hub format).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    where = "model_card"
    if candidate not in evidence.models:
        v.fail(where, f"candidate {candidate!r} has no recorded model", f"candidates: {sorted(evidence.models)}")
    sha = evidence.models[candidate]
    clean, robust = evidence[f"clean_accuracy@{candidate}"], evidence[f"robust_accuracy@{candidate}"]
    results = [EvalResult(task_type="image-classification", dataset_type="digits", dataset_name="scikit-learn digits",
                          metric_type="accuracy", metric_name="clean accuracy", metric_value=clean.value),
               EvalResult(task_type="image-classification", dataset_type="digits", dataset_name="scikit-learn digits",
                          metric_type="robust_accuracy", metric_name=f"robust accuracy ({robust.method})",
                          metric_value=robust.value)]
    data = ModelCardData(model_name=name, license="mit", tags=["modelsec-workbench", "security-audited"],
                         eval_results=results)
    fields = {
        "model_id": f"{name} {version or candidate}",
        "model_summary": (f"A small multilayer perceptron that classifies 8×8 images of handwritten digits, "
                          f"version {version or candidate}, weights sha256 `{sha}`."),
        "model_description": ("The course's running example: 64 inputs, one hidden layer, 10 classes, trained "
                              "with PyTorch on CPU under pinned numerics (the same weights on every x86-64 "
                              "machine)."),
        "developers": "ModelSec Workbench course",
        "model_type": "image classifier (MLP)",
        "direct_use": "Teaching and testing security controls on a model small enough to retrain in seconds.",
        "out_of_scope_use": ("Any decision about people or money: the model was trained on 1,437 digits from "
                             "one source and was not evaluated on other handwriting."),
        "bias_risks_limitations": ("Evaluated on one held-out split of the same source. Robust accuracy holds "
                                   "for the stated attack, budget and norm only. The scans bound what they "
                                   "test, not every backdoor; a clean-label poison (lesson 03) evades them."),
        "bias_recommendations": ("Serve it behind the course's API with label-only outputs and quotas; load it "
                                 "only through the load gate; re-run the release gate on every change."),
        "training_data": "scikit-learn's digits (UCI, 1,797 images); the split and its file hash are in the trail.",
        "training_regime": "fp32, CPU, seeded; configuration recorded in the audit trail's training entry.",
        "testing_data": "The test split of the same seeded split (held out from training and validation).",
        "testing_metrics": "Accuracy; robust accuracy under PGD (L∞); share flagged by a backdoor scan; "
                           "membership-inference TPR at a low FPR (Carlini et al., 2022).",
        "testing_factors": "None: the digits carry no metadata (writer, device) to disaggregate by.",
        "results": performance_section(evidence, candidate),
        "results_summary": (f"Clean accuracy {traced(clean)}; robust accuracy {traced(robust)} at the stated "
                            f"attack and budget only."),
        "model_examination": security_section(evidence, candidate),
        "hardware_type": "CPU",
        "software": "PyTorch, torchattacks, scikit-learn, opacus (versions in requirements.lock and the ML-BOM)",
        "more_information": (f"Every number above is followed by the first 8 hex digits of the audit-trail "
                             f"entry that recorded it" + (f"; trail head `{trail_head}`." if trail_head else ".")),
        "model_card_authors": "generated by utils.governance.modelcard from the audit trail",
    }
    fields.update(extra or {})
    return ModelCard.from_template(data, **fields)


def untraceable(text: str, entries: Iterable) -> list[str]:
    """Numbers of a card (or one section) that do not trace to the trail (taught in 09_governance_and_audit).

    ``entries`` are the trail's entries. A traced number ``x [run h]`` is sound when an
    ``"evaluation"`` entry whose hash starts with ``h`` recorded the value ``x`` (to the printed
    digits); any other decimal number in the text is untraced. Returns one message per problem.
    """
    if not isinstance(text, str):
        v.fail("untraceable", f"text is a {type(text).__name__}", "give the card's Markdown as a string")
    evals = [e for e in entries if getattr(e, "kind", None) == "evaluation"]
    body = text.split("\n---\n", 1)[-1] if text.startswith("---") else text  # the metadata block is YAML
    problems = []
    for value, short in TRACED.findall(body):
        match = [e for e in evals if e.hash.startswith(short)]
        if not match:
            problems.append(f"{value} [run {short}]: no evaluation entry has that hash")
            continue
        recorded = float(match[0].data.get("value", float("nan")))
        digits = len(value.split(".")[1]) if "." in value else 0
        if round(recorded, digits) != float(value):
            problems.append(f"{value} [run {short}]: the entry recorded {recorded}")
    rest = TRACED.sub("", body)
    problems += [f"{n}: a number with no run" for n in DECIMAL.findall(rest)]
    return problems
