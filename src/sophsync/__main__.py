"""``python -m sophsync`` is the ``sophsync`` command."""

from sophsync.cli import main

if __name__ == "__main__":
    main()
