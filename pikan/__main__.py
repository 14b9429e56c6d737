import sys

from pikan.cli import main

sys.exit(main())
