"""Model theft and ownership: extraction through the API, what output policies cost,
PRADA detection, watermarks and fingerprints (taught in 06_model_theft_and_privacy).

- :mod:`utils.theft.extraction`: query sets, :func:`query_api` over HTTP, :func:`steal`, :func:`fidelity`.
- :mod:`utils.theft.policies`: what a client sees under each output policy; ECE and Brier score.
- :mod:`utils.theft.detection`: PRADA (Juuti et al., 2019) on a client's query stream.
- :mod:`utils.theft.ownership`: trigger-set watermark (Adi et al., 2018) and a boundary fingerprint.
"""
from utils.theft.detection import Prada, prada_log, prada_stream
from utils.theft.extraction import (QUERY_SETS, Answers, budget_curve, copy_config, fidelity, query_api, query_set,
                                    steal, train_cached, vary)
from utils.theft.ownership import (agreement, boundary_fingerprint, chance_rate, claim_p_value, embed_watermark,
                                   false_claim_rate, trigger_set, verify)
from utils.theft.policies import POLICIES, brier_score, expected_calibration_error, honest_cost, served, top1

__all__ = ["Prada", "prada_log", "prada_stream", "QUERY_SETS", "Answers", "budget_curve", "copy_config", "fidelity",
           "query_api", "query_set", "steal", "train_cached", "vary", "agreement", "boundary_fingerprint",
           "chance_rate", "claim_p_value", "embed_watermark", "false_claim_rate", "trigger_set", "verify",
           "POLICIES", "brier_score", "expected_calibration_error", "honest_cost", "served", "top1"]
