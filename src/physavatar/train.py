"""Multi-process entry point: `accelerate launch [--config_file configs/accelerate/ddp.yaml] -m physavatar.train
--config configs/vace_1_3b.yaml`. Same arguments as `physavatar train`."""

import sys

from physavatar.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
