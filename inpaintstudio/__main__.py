import sys

from inpaintstudio.cli import main

sys.exit(main())
