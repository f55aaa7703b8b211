"""Data curation (Appendix A): raw talking videos -> clean single-speaker 512² / 25 fps / 16 kHz clips.

probe.py     inputs and their container / streams / timing     scenes.py    PySceneDetect cuts
faces.py     MediaPipe + Haar faces, IoU tracking              speakers.py  one speaker, one identity
sync.py      SyncNet check (only with user-given weights)      crop.py      stable upper-body square
segment.py   3-15 s clips of 1 + 4k frames (pure)              analyse.py   pass 1 + per-segment decisions
write.py     pass 2: clip folders in the clip format           manifest.py  resumable ledger + manifest
report.py    funnel summary (text + PNG)                       pipeline.py  `curate(cfg)`, the worker pool

Nothing is imported here (no import-time cost); see docs/curation.md.
"""
