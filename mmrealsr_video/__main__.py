"""``python -m mmrealsr_video`` runs the command line."""

import sys

from mmrealsr_video.cli import main

sys.exit(main())
