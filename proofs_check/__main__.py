from proofs_check.cli import main
import sys

sys.exit(main())
