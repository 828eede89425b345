"""``python -m chatbot.cli ...`` is ``medchat ...``."""

import sys

from chatbot.cli import main

sys.exit(main())
