"""Privacy attacks and defenses (taught in 06_model_theft_and_privacy).

- :mod:`utils.privacy.membership` – the member / non-member design, the
  threshold attack and LiRA with shadow models, ROC / AUC / TPR at a low FPR.
- :mod:`utils.privacy.dp` – DP-SGD with opacus (epsilon reported), cached, and
  the privacy / utility trade-off study.
"""
