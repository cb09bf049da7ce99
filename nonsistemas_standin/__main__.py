"""`python -m nonsistemas_standin`: the same as the `nonsistemas-standin` command."""

from .cli import main

raise SystemExit(main())
