"""``python -m components.config Pulumi.<stack>.yaml ...``: the offline config check."""

from components.config.cli import main

raise SystemExit(main())
