"""Evaluation: the metrics of §4.1 / Table 1 (`evaluate`, `physavatar eval`) and the visual Turing test (study/).

metrics/    pure metric math on features (Fréchet distance, DIV, Hand-C/V, SyncNet offset search, CSIM)
backbones/  feature networks, each from a local weight path (Inception, I3D, MediaPipe hands, dlib, SyncNet, …)
media.py    reading mp4 folders and clip datasets;  features.py  per-video measurements
runner.py   `evaluate(generated, reference, config)`;  report.py  JSON and Markdown (Table 1 layout)

Nothing is imported here, so `physavatar.evaluation.study` does not pay for torch or scipy.
"""
