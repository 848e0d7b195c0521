import sys

from dsabench.cli.main import main

sys.exit(main())
