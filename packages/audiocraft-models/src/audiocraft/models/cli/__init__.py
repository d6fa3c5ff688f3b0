"""Command lines of audiocraft-models: ``audiocraft-generate`` (:mod:`.generate`), ``audiocraft-codec`` (:mod:`.codec`).

Both import torch and the models only inside ``main``, so ``--help`` is fast.
"""
