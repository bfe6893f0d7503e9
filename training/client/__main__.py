"""``python -m training.client``: the participant CLI (see ``training.client.cli``)."""

import sys

from training.client.cli import main

if __name__ == "__main__":
    sys.exit(main())
