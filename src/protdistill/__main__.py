"""`python -m protdistill ...` = the `protdistill` command (Lightning's DDP launcher re-runs it)."""

from protdistill.cli.main import main

if __name__ == "__main__":
    main()
